"""Rule generate_synthetic: population and personal synthetic data for one generator."""

from behaviorflow.generate import run_generator
from behaviorflow.llm import CachedLLM, LLMCache, OpenAIBackend
from behaviorflow.runlog import log_to

log = log_to(snakemake.log[0])
settings = snakemake.params.settings
llm = None
if snakemake.wildcards.generator == "behaviorgen":
    bg = settings["behaviorgen"]
    if bg["backend"] == "openai":
        api = bg["openai"]
        backend = OpenAIBackend(api["model"], api["base_url"], api["key_env"], api["max_retries"], api["timeout_s"])
    else:
        from behaviorflow.local_lm import TransformersBackend

        backend = TransformersBackend(snakemake.input.model, snakemake.input.get("adapter"),
                                      bg["transformers"]["device"], threads=snakemake.threads)
    llm = CachedLLM(backend, LLMCache(settings["cache_dir"]))
summary = run_generator(
    snakemake.input.split,
    snakemake.input.profiles,
    dict(snakemake.output.items()),
    snakemake.wildcards.generator,
    settings,
    snakemake.params.slot_minutes,
    snakemake.params.top_zones,
    llm=llm,
)
if llm is not None:
    log.info("backend calls this run: %d (cache hits: %d)", llm.backend_calls, llm.cache_hits)
