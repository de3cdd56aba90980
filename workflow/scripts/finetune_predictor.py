"""Rule finetune_predictor: per-test-user fine-tuning for tables 2 and 3 (all settings, one seed)."""

from behaviorflow.runlog import log_to
from behaviorflow.scenarios import run_finetune

log_to(snakemake.log[0])
personal = {k.removeprefix("personal_"): v for k, v in snakemake.input.items() if k.startswith("personal_")}
run_finetune(snakemake.input.model, snakemake.input.split, personal, dict(snakemake.output.items()),
             snakemake.wildcards.dataset, snakemake.wildcards.model, int(snakemake.wildcards.seed),
             snakemake.params.settings, snakemake.params.slot_minutes, snakemake.threads)
