"""Rule bua_predict: a BUA row on the LLM test queries (understanding rounds, then every label scored)."""

from behaviorflow.bua.infer import bua_predict
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
bua_predict(snakemake.input.split, snakemake.input.states, snakemake.input.model, snakemake.input.adapter,
            dict(snakemake.output.items()), dataset=w.dataset, method=w.method, seed=int(w.seed), bua=p.bua,
            variant=p.variant, device=p.device, dtype=p.dtype, threads=snakemake.threads)
