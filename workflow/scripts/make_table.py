"""Rule table: one results table in long format, its summary, its Markdown page and provenance."""

from behaviorflow.runlog import log_to
from behaviorflow.tables import write_table

log_to(snakemake.log[0])
write_table(snakemake.wildcards.table, list(snakemake.input.parts), dict(snakemake.output.items()),
            snakemake.params.config, snakemake.params.seeds,
            sources=list(snakemake.input.models) + list(snakemake.input.summaries))
