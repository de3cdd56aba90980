"""Rule table4: the BehaviorGen prompt ablation in long format, its wide summary, page and provenance."""

from behaviorflow.runlog import log_to
from behaviorflow.validation import write_table4

log_to(snakemake.log[0])
write_table4(list(snakemake.input.fidelity), list(snakemake.input.summaries), dict(snakemake.output.items()),
             snakemake.params.config, snakemake.params.ablation, snakemake.params.constrained)
