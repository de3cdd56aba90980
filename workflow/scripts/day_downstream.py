"""Rule day_downstream: table 8's downstream check (SASRec fine-tuned with and without each generator's day)."""

from behaviorflow.bua.days import day_downstream
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
day_downstream(split=snakemake.input.split, model_path=snakemake.input.model,
               day_paths={g: snakemake.input[f"days_{g}"] for g in p.generators}, outputs=dict(snakemake.output.items()),
               dataset=w.dataset, seed=int(w.seed), days=p.days, predictors=p.predictors,
               slot_minutes=p.slot_minutes, threads=snakemake.threads)
