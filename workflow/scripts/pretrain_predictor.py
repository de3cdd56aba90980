"""Rule pretrain_predictor: a population predictor on real (+ synthetic) training users; table-1 rows."""

from behaviorflow.predictors.scenarios import pretrain_predictor
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
pretrain_predictor(split_path=snakemake.input.split, synthetic_path=snakemake.input.get("synthetic"),
                   outputs=dict(snakemake.output.items()), dataset=snakemake.wildcards.dataset,
                   model=snakemake.wildcards.model, train_set=snakemake.wildcards.train_set,
                   seed=int(snakemake.wildcards.seed), cfg=snakemake.params.settings,
                   slot_minutes=snakemake.params.slot_minutes, threads=snakemake.threads)
