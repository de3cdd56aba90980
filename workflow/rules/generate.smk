# Synthetic behaviour data: BehaviorGen (LLM) and the Markov baseline, with the same outputs.
# LLM calls go through the content-addressed cache in generation.cache_dir (not a declared
# output: it survives failed jobs and makes reruns free).


rule generate_synthetic:
    input:
        unpack(get_generation_inputs),
    output:
        population="data/synthetic/{dataset}/{generator}/population.parquet",
        personal="data/synthetic/{dataset}/{generator}/personal.parquet",
        log="data/synthetic/{dataset}/{generator}/generation_log.parquet",
        summary="data/synthetic/{dataset}/{generator}/generation_summary.json",
    log:
        "logs/{dataset}/generate_{generator}.log",
    benchmark:
        "logs/benchmarks/{dataset}/generate_{generator}.tsv"
    wildcard_constraints:
        generator="|".join(GENERATORS),
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=get_generation_gpus,
    params:
        settings=get_generation_settings,
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
    script:
        "../scripts/generate_synthetic.py"
