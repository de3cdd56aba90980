"""Rule prepare_generator_model: the embedded GGUF -> a transformers model directory."""

from behaviorflow.lm.convert import prepare_generator_model
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
prepare_generator_model(out_dir=snakemake.output.model)
