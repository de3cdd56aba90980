# Synthetic behaviour data: BehaviorGen (LLM) and the Markov baseline, with the same outputs.
# One job per part: the synthetic population (table 1) and the personal weeks (tables 2-3), so
# `results/table3.csv` alone never waits for the population.
# LLM calls go through the content-addressed cache in generation.cache_dir (not a declared
# output: it survives failed jobs and makes reruns free).


rule generate_synthetic:
    input:
        unpack(get_generation_inputs),
    output:
        events="data/synthetic/{dataset}/{generator}/{part}.parquet",
        log="data/synthetic/{dataset}/{generator}/{part}_log.parquet",
        summary="data/synthetic/{dataset}/{generator}/{part}_summary.json",
    log:
        "logs/{dataset}/generate_{generator}_{part}.log",
    benchmark:
        "logs/benchmarks/{dataset}/generate_{generator}_{part}.tsv"
    wildcard_constraints:
        generator="|".join(GENERATORS),
        part="population|personal",
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
