"""Rule scenario_table: tables 1-3 in long format, their summaries, pages and provenance."""

from behaviorflow.reporting.scenario_tables import scenario_table
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
scenario_table(name=snakemake.wildcards.table, part_paths=list(snakemake.input.parts),
               outputs=dict(snakemake.output.items()), config=snakemake.params.config,
               seeds=snakemake.params.seeds, sources=list(snakemake.input.models) +
               list(snakemake.input.summaries))
