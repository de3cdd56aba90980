"""Rule validation_report: one dataset's fidelity.csv and privacy.csv with provenance sidecars."""

from behaviorflow.runlog import log_to
from behaviorflow.validation import write_validation_report

log_to(snakemake.log[0])
write_validation_report(list(snakemake.input.parts), list(snakemake.input.data), dict(snakemake.output.items()),
                        snakemake.params.config)
