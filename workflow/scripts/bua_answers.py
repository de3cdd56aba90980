"""Rule bua_answers: one seed's curriculum answers written through the openai backend, cached."""

from behaviorflow.bua.writer import bua_answers
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p = snakemake.params
bua_answers(snakemake.input.split, snakemake.input.states, dict(snakemake.output), bua=p.bua,
            seed=int(snakemake.wildcards.seed), backend=p.backend, cache_dir=p.cache_dir)
