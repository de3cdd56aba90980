"""Rule pretrain_predictor: a population predictor on real (+ synthetic) training users; table-1 rows."""

from behaviorflow.runlog import log_to
from behaviorflow.scenarios import run_pretrain

log_to(snakemake.log[0])
run_pretrain(snakemake.input.split, snakemake.input.get("synthetic"), dict(snakemake.output.items()),
             snakemake.wildcards.dataset, snakemake.wildcards.model, snakemake.wildcards.train_set,
             int(snakemake.wildcards.seed), snakemake.params.settings, snakemake.params.slot_minutes,
             snakemake.threads)
