"""Rules behaviorlm_atune and behaviorlm_tail_first: a LoRA stage on training users' samples
(data-parallel under torchrun when behaviorlm.processes > 1)."""

from behaviorflow.behaviorlm.stages import behaviorlm_atune
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
s, stage = snakemake.params.settings, snakemake.params.stage
behaviorlm_atune(s["processes"], split_path=snakemake.input.split, model_dir=snakemake.input.model,
          out_dir=snakemake.output.adapter, tuning=s["tuning"], prompt=s["prompt"], seed=int(snakemake.wildcards.seed),
          train_examples=s["train_examples"], anchor_share=s["anchor_share"],
          aux_share=s["aux_share"] if stage["aux"] else 0.0, aux_corpus=s["aux_corpus"],
          anchors_only=stage["anchors_only"], order=stage["order"], init_from=snakemake.input.get("init"),
          device=s["device"], threads=snakemake.threads)
