"""Rule fidelity_privacy_report: execute its papermill notebook with paths and labels (never secrets) as parameters."""

from behaviorflow.reporting.reports import fidelity_privacy_report
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
fidelity_privacy_report(inputs=dict(snakemake.input.items()), outputs=dict(snakemake.output.items()),
                        labels=dict(snakemake.params.labels), secret_envs=snakemake.params.secret_envs)
