"""Rule validation_report: one dataset's fidelity.csv and privacy.csv with provenance sidecars."""

from behaviorflow.runlog import log_to
from behaviorflow.validation.validate import validation_report

log_to(snakemake.log[0])
validation_report(parts=list(snakemake.input.parts), data=list(snakemake.input.data),
                  outputs=dict(snakemake.output.items()), config=snakemake.params.config)
