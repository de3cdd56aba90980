"""Rule bua_states: the frozen SASRec's states of every sample BUA trains, stops early or predicts on."""

from behaviorflow.bua.stages import bua_states
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
b, q = snakemake.params.bua, snakemake.params.queries
bua_states(snakemake.input.split, snakemake.input.encoder, snakemake.output.states, predictors=snakemake.params.predictors,
           slot_minutes=snakemake.params.slot_minutes, window=b["window"], positions=b["positions"], pool=b["pool"],
           pool_seed=b["pool_seed"], val=b["val"], queries=q["queries"], query_seed=q["query_seed"],
           generation=b["generation"], embedding=snakemake.wildcards.embedding, threads=snakemake.threads)
