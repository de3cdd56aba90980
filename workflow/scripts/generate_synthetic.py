"""Rule generate_synthetic: one generator's synthetic population or personal weeks."""

from behaviorflow.generate import make_llm, run_generator
from behaviorflow.runlog import log_to

log = log_to(snakemake.log[0])
settings = snakemake.params.settings
llm = make_llm(snakemake.wildcards.generator, settings, snakemake.input.get("model"),
               snakemake.input.get("adapter"), snakemake.threads)
run_generator(
    snakemake.input.split,
    snakemake.input.profiles,
    dict(snakemake.output.items()),
    snakemake.wildcards.generator,
    snakemake.wildcards.part,
    settings,
    snakemake.params.slot_minutes,
    snakemake.params.top_zones,
    llm=llm,
)
if llm is not None:
    log.info("backend calls this run: %d (cache hits: %d)", llm.backend_calls, llm.cache_hits)
