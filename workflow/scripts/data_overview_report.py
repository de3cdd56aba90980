"""Rule data_overview_report: execute its papermill notebook with paths and labels (never secrets) as parameters."""

from behaviorflow.reporting.reports import data_overview_report
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
data_overview_report(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                     labels=dict(snakemake.params.labels), secret_envs=snakemake.params.secret_envs)
