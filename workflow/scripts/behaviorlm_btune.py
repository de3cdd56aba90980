"""Rule behaviorlm_btune: continue the A-tuned adapter on the selected samples (data-parallel under
torchrun when behaviorlm.processes > 1)."""

from behaviorflow.behaviorlm.stages import behaviorlm_btune
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
s = snakemake.params.settings
behaviorlm_btune(s["processes"], split_path=snakemake.input.split, model_dir=snakemake.input.model,
          init_dir=snakemake.input.init, selected_path=snakemake.input.selected, out_dir=snakemake.output.adapter,
          tuning=s["tuning"], btune_settings=snakemake.params.btune, prompt=s["prompt"],
          seed=int(snakemake.wildcards.seed), device=s["device"], threads=snakemake.threads)
