"""Rule behaviorlm_predict: one LLM method's rows on the fixed LLM test queries (every label scored)."""

from behaviorflow.behaviorlm.evaluate import behaviorlm_predict
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
s, w = snakemake.params.settings, snakemake.wildcards
behaviorlm_predict(snakemake.input.split, snakemake.input.model, snakemake.input.get("adapter"), dict(snakemake.output.items()),
        dataset=w.dataset, method=w.method, seed=int(w.seed), prompt=s["prompt"], queries=s["queries"],
        query_seed=s["query_seed"], device=s["device"], dtype=s["dtype"], threads=snakemake.threads)
