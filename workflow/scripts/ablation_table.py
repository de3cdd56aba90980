"""Rule ablation_table: table 4, the BehaviorGen prompt ablation, with summary, page and provenance."""

from behaviorflow.reporting.ablation_table import ablation_table
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
ablation_table(fidelity_paths=list(snakemake.input.fidelity), summary_paths=list(snakemake.input.summaries),
               outputs=dict(snakemake.output.items()), config=snakemake.params.config,
               ablation=snakemake.params.ablation, constrained=snakemake.params.constrained)
