"""Rule bua_generate: a BUA row's next day for each sampled test user (table 8), and its fidelity rows."""

from behaviorflow.bua.infer import bua_generate
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
bua_generate(snakemake.input.split, snakemake.input.states, snakemake.input.model,
             snakemake.input.adapter, dict(snakemake.output.items()), dataset=w.dataset, method=w.method,
             seed=int(w.seed), bua=p.bua, variant=p.variant, sampling=p.sampling, user_mix=p.user_mix,
             fill_days=p.fill_days, slot_minutes=p.slot_minutes,
             top_zones=p.top_zones, device=p.device, dtype=p.dtype, threads=snakemake.threads)
