"""Rule bua_reflect: the stage-2 model's summary drafts, scored against the reference."""

from behaviorflow.bua.stages import bua_reflect
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p = snakemake.params
bua_reflect(snakemake.input.split, snakemake.input.states, snakemake.input.model, snakemake.input.adapter,
            snakemake.output.pool, bua=p.bua, seed=int(snakemake.wildcards.seed), variant=p.variant,
            answers_path=snakemake.input.get("answers"), device=p.device, dtype=p.dtype, threads=snakemake.threads)
