"""Rule generate_ablation: one BehaviorGen prompt variant on the ablation's fixed users."""

from behaviorflow.generate import make_llm, run_ablation
from behaviorflow.runlog import log_to

log = log_to(snakemake.log[0])
settings = snakemake.params.settings
llm = make_llm("behaviorgen", settings, snakemake.input.get("model"), snakemake.input.get("adapter"),
               snakemake.threads)
run_ablation(snakemake.input.split, snakemake.input.profiles, dict(snakemake.output.items()), settings,
             snakemake.params.ablation, snakemake.wildcards.variant, int(snakemake.wildcards.seed),
             snakemake.params.slot_minutes, snakemake.params.top_zones, llm)
log.info("backend calls this run: %d (cache hits: %d)", llm.backend_calls, llm.cache_hits)
