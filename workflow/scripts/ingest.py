"""Rule ingest: raw log -> canonical events.parquet, rejects.csv, ingest_report.json."""

from behaviorflow.data.ingest import ingest
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
ingest(ds=snakemake.params.settings, log_path=snakemake.input.log,
       attributes_path=snakemake.input.get("attributes"), events_out=snakemake.output.events,
       attributes_out=snakemake.output.attributes, rejects_out=snakemake.output.rejects,
       report_out=snakemake.output.report, threads=snakemake.threads,
       # leave a quarter of the job's memory to Python and the Parquet writer
       memory_mb=int(snakemake.resources.mem_mb * 0.75))
