"""Rule tune_generator: LoRA-tune the generator on training users' weeks (prompt -> completion)."""

from behaviorflow.behaviorgen.tuning import tune_generator
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
tune_generator(model=snakemake.input.model, split=snakemake.input.split, profiles=snakemake.input.profiles,
               adapter=snakemake.output.adapter, lora=snakemake.params.lora, device=snakemake.params.device,
               sample_days=snakemake.params.sample_days, top_zones=snakemake.params.top_zones,
               threads=snakemake.threads)
