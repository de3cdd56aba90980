"""Rule behaviorlm_score_pool: the A-tuned model's predictions for a stratified pool of training samples."""

from behaviorflow.behaviorlm.stages import behaviorlm_score_pool
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
s = snakemake.params.settings
behaviorlm_score_pool(snakemake.input.split, snakemake.input.model, snakemake.input.adapter, snakemake.output.pool,
           prompt=s["prompt"], seed=int(snakemake.wildcards.seed), pool=snakemake.params.pool, device=s["device"],
           dtype=s["dtype"], threads=snakemake.threads)
