"""Rule manifest: sha256 of every result file (what `python -m behaviorflow.audit` verifies)."""

from behaviorflow.audit import write_manifest
from behaviorflow.runlog import log_to

log = log_to(snakemake.log[0])
text = write_manifest(list(snakemake.input), snakemake.output[0])
log.info("%d results in the manifest", text.count("\n"))
