"""Rule validate_synthetic: fidelity and privacy rows of one generator's (or ablation run's) synthetic data."""

from behaviorflow.runlog import log_to
from behaviorflow.validation import validate_source

log_to(snakemake.log[0])
validate_source(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.wildcards.dataset,
                snakemake.wildcards.source, snakemake.params.shown_splits, snakemake.params.privacy,
                snakemake.params.generation)
