"""Rule sequential_on_llm_queries: the counting rows and the pretrained SASRec / BERT4Rec on the LLM
test queries, so table 5 compares every method on the same queries."""

from behaviorflow.behaviorlm.sequential import sequential_on_llm_queries
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
s = snakemake.params.settings
sequential_on_llm_queries(snakemake.input.split, list(snakemake.input.models), snakemake.output.metrics,
                dataset=snakemake.wildcards.dataset, prompt=s["prompt"], queries=s["queries"],
                query_seed=s["query_seed"], predictors=snakemake.params.predictors,
                slot_minutes=snakemake.params.slot_minutes)
