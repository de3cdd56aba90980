"""behaviorflow: LLM-based modelling of human daily behaviour as a reproducible Snakemake workflow."""

__version__ = "0.1.0"
