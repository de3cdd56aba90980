"""Rule behaviorlm_select: the B-tuning set from the scored pool, by difficulty (or at random)."""

from behaviorflow.behaviorlm.stages import behaviorlm_select
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
w = snakemake.wildcards
behaviorlm_select(snakemake.input.split, snakemake.input.pool, snakemake.output.selected, snakemake.output.report,
       prompt=snakemake.params.prompt, seed=int(w.seed), per_label=int(w.per_label), how=w.how)
