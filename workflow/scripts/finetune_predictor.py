"""Rule finetune_predictor: per-test-user fine-tuning for tables 2 and 3 (all settings, one seed)."""

from behaviorflow.predictors.scenarios import finetune_predictor
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
finetune_predictor(model_path=snakemake.input.model, split_path=snakemake.input.split,
                   personal_paths={k.removeprefix("personal_"): v for k, v in snakemake.input.items() if
                   k.startswith("personal_")}, outputs=dict(snakemake.output.items()),
                   dataset=snakemake.wildcards.dataset, model=snakemake.wildcards.model,
                   seed=int(snakemake.wildcards.seed), cfg=snakemake.params.settings,
                   slot_minutes=snakemake.params.slot_minutes, threads=snakemake.threads)
