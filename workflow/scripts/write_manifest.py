"""Rule write_manifest: sha256 of every result file (what `python -m behaviorflow.audit` verifies)."""

from behaviorflow.audit import write_manifest
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
write_manifest(paths=list(snakemake.input), out=snakemake.output[0])
