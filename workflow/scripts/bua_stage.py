"""Rules bua_stage1, bua_stage2, bua_stage3: one curriculum stage (the paper's freeze map), data-parallel
under torchrun when bua.processes > 1."""

from behaviorflow.bua.stages import bua_stage
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p = snakemake.params
bua_stage(p.processes, stage=p.stage, split_path=snakemake.input.split, states_path=snakemake.input.states,
          model_dir=snakemake.input.model, out_dir=snakemake.output.adapter, bua=p.bua,
          seed=int(snakemake.wildcards.seed), variant=p.variant, init_from=snakemake.input.get("init"),
          reflect_path=snakemake.input.get("reflect"), answers_path=snakemake.input.get("answers"),
          device=p.device, threads=snakemake.threads)
