"""Rule prepare_generator_model: the embedded GGUF -> a transformers model directory."""

from behaviorflow.local_lm import convert_gguf, embedded_gguf
from behaviorflow.runlog import log_to

log = log_to(snakemake.log[0])
info = convert_gguf(embedded_gguf(), snakemake.output.model)
log.info("converted %s (%d parameters)", info["source"], info["parameters"])
