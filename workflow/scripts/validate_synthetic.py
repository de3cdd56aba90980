"""Rule validate_synthetic: fidelity and privacy rows of one generator's (or ablation run's) synthetic data."""

from behaviorflow.runlog import log_to
from behaviorflow.validation.validate import validate_synthetic

log_to(snakemake.log[0])
validate_synthetic(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                   dataset=snakemake.wildcards.dataset, source=snakemake.wildcards.source,
                   shown_splits=snakemake.params.shown_splits, privacy=snakemake.params.privacy,
                   generation=snakemake.params.generation)
