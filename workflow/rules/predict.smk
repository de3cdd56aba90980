# Next-behaviour predictors and the three BehaviorGen scenarios (tables 1-3). One job per
# dataset x model x training set x seed (pretraining) and per dataset x model x seed (all test
# users' fine-tuning in one job), never one per user: the DAG size does not grow with users.


rule pretrain_predictor:
    input:
        unpack(get_pretrain_inputs),
    output:
        model="models/predictors/{dataset}/{model}/{train_set}/seed{seed}.pt",
        metrics="results/{dataset}/parts/table1/{model}_{train_set}_seed{seed}.csv",
        history="results/{dataset}/parts/table1/{model}_{train_set}_seed{seed}.json",
    log:
        "logs/{dataset}/pretrain_{model}_{train_set}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/pretrain_{model}_{train_set}_seed{seed}.tsv"
    wildcard_constraints:
        model="|".join(PREDICTORS),
        train_set="|".join(TRAIN_SETS),
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["predictors"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["predictors"]["runtime"],
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("pretrain_predictor"),
        settings=PRETRAIN_PARAMS,
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/pretrain_predictor.py"


rule finetune_predictor:
    input:
        unpack(get_finetune_inputs),
    output:
        metrics="results/{dataset}/parts/finetune/{model}_seed{seed}.csv",
        runs="results/{dataset}/parts/finetune/{model}_seed{seed}_runs.csv",
    log:
        "logs/{dataset}/finetune_{model}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/finetune_{model}_seed{seed}.tsv"
    wildcard_constraints:
        model="|".join(PREDICTORS),
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["predictors"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["predictors"]["runtime"],
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("finetune_predictor"),
        settings=FINETUNE_PARAMS,
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/finetune_predictor.py"


rule predictability:
    input:
        split="data/processed/{dataset}/split.parquet",
        events="data/processed/{dataset}/events.parquet",
    output:
        metrics="results/{dataset}/parts/leaderboard/counting.csv",
        structure="results/{dataset}/structure.json",
    log:
        "logs/{dataset}/predictability.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("predictability"),
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/predictability.py"
