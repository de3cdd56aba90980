"""Rules bua_stage1, bua_stage2, bua_stage3: one curriculum stage (the paper's freeze map)."""

from behaviorflow.bua.stages import train_stage
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p = snakemake.params
train_stage(p.stage, snakemake.input.split, snakemake.input.states, snakemake.input.model, snakemake.output.adapter,
            bua=p.bua, seed=int(snakemake.wildcards.seed), variant=p.variant, init_from=snakemake.input.get("init"),
            reflect_path=snakemake.input.get("reflect"), device=p.device, threads=snakemake.threads)
