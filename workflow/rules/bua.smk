# BUA (arXiv 2604.23578) and tables 7 and 9: the frozen pretrained SASRec's states (computed once per
# dataset and embedding kind), the three-stage curriculum on lm.tuning (stage 1: projector; stage 2:
# projector + LoRA on the multi-round dialogue; stage 3: LoRA on reflections of the weakest
# summaries), the rows scored on table 5's LLM test queries, and one-day generation (table 8: BUA,
# BehaviorGen and Markov write the next day of the same test users). `arm` names a stage-2 variant
# (BUA_ARMS in inputs/bua.smk); every training stage is GPU-tagged, and with bua.processes > 1
# runs under torchrun and asks for that many GPUs.


rule bua_states:
    input:
        split="data/processed/{dataset}/split.parquet",
        encoder=get_bua_encoder,
    output:
        states="results/{dataset}/bua/states_{embedding}.npz",
    log:
        "logs/{dataset}/bua_states_{embedding}.log",
    wildcard_constraints:
        embedding="sequence|item",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA_TRAINING_THREADS
    params:
        code=library_code("bua_states"),
        bua={
            **{k: BUA[k] for k in ("window", "positions", "pool", "pool_seed", "val")},
            # which days' states: decoding settings never recompute them
            "generation": {k: BUA["generation"][k] for k in ("users", "train_days")},
        },
        queries={k: BEHAVIORLM[k] for k in ("queries", "query_seed")},
        predictors=PRETRAIN_PARAMS,
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/bua_states.py"


# bua_answers only waits on an API: under a cluster profile it runs where Snakemake runs, which
# reaches the endpoint (compute nodes often do not)
localrules:
    bua_answers,


rule bua_answers:
    input:
        split="data/processed/{dataset}/split.parquet",
        states="results/{dataset}/bua/states_sequence.npz",
    output:
        answers="results/{dataset}/bua/curriculum_answers_seed{seed}.parquet",
        summary="results/{dataset}/bua/curriculum_answers_seed{seed}_summary.json",
    log:
        "logs/{dataset}/bua_answers_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_answers_seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
    params:
        code=library_code("bua_answers"),
        bua=BUA_ANSWER_SETTINGS,
        backend=config["generation"]["behaviorgen"]["openai"],
        cache_dir=config["generation"]["cache_dir"],
    script:
        "../scripts/bua_answers.py"


rule bua_stage1:
    input:
        unpack(get_bua_answers),
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        states="results/{dataset}/bua/states_{embedding}.npz",
    output:
        adapter=directory("models/bua/{dataset}/stage1_{embedding}/seed{seed}"),
    log:
        "logs/{dataset}/bua_stage1_{embedding}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_stage1_{embedding}_seed{seed}.tsv"
    wildcard_constraints:
        embedding="sequence|item",
        seed=r"\d+",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA_TRAINING_THREADS
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BUA["processes"],
    params:
        code=library_code("bua_stage"),
        processes=BUA["processes"],
        stage=1,
        bua=BUA_SETTINGS,
        variant={"rounds": BUA_ROUNDS, "balance": True},
        device=BUA["device"],
    script:
        "../scripts/bua_stage.py"


rule bua_stage2:
    input:
        unpack(get_bua_stage2_inputs),
    output:
        adapter=directory("models/bua/{dataset}/stage2_{arm}/seed{seed}"),
    log:
        "logs/{dataset}/bua_stage2_{arm}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_stage2_{arm}_seed{seed}.tsv"
    wildcard_constraints:
        arm="|".join(BUA_ARMS),
        seed=r"\d+",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA_TRAINING_THREADS
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BUA["processes"],
    params:
        code=library_code("bua_stage"),
        processes=BUA["processes"],
        stage=2,
        bua=BUA_SETTINGS,
        variant=lambda wildcards: bua_variant(wildcards.arm),
        device=BUA["device"],
    script:
        "../scripts/bua_stage.py"


rule bua_reflect:
    input:
        unpack(get_bua_answers),
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        states=get_bua_states,
        adapter="models/bua/{dataset}/stage2_{arm}/seed{seed}",
    output:
        pool="results/{dataset}/bua/reflect_{arm}_seed{seed}.parquet",
    log:
        "logs/{dataset}/bua_reflect_{arm}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_reflect_{arm}_seed{seed}.tsv"
    wildcard_constraints:
        arm="|".join(BUA_ARMS),
        seed=r"\d+",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA["inference_threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("bua_reflect"),
        bua=BUA_SETTINGS,
        variant=lambda wildcards: bua_variant(wildcards.arm),
        device=BUA["device"],
        dtype=BUA["dtype"],
    script:
        "../scripts/bua_reflect.py"


rule bua_stage3:
    input:
        unpack(get_bua_answers),
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        states=get_bua_states,
        init="models/bua/{dataset}/stage2_{arm}/seed{seed}",
        reflect="results/{dataset}/bua/reflect_{arm}_seed{seed}.parquet",
    output:
        adapter=directory("models/bua/{dataset}/stage3_{arm}/seed{seed}"),
    log:
        "logs/{dataset}/bua_stage3_{arm}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_stage3_{arm}_seed{seed}.tsv"
    wildcard_constraints:
        arm="|".join(BUA_ARMS),
        seed=r"\d+",
    priority: BUA_PRIORITY["train"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA_TRAINING_THREADS
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BUA["processes"],
    params:
        code=library_code("bua_stage"),
        processes=BUA["processes"],
        stage=3,
        bua=BUA_SETTINGS,
        variant=lambda wildcards: bua_variant(wildcards.arm),
        device=BUA["device"],
    script:
        "../scripts/bua_stage.py"


rule bua_predict:
    input:
        unpack(get_bua_predict_inputs),
    output:
        metrics="results/{dataset}/parts/llm/{method}_seed{seed}.csv",
        scores="results/{dataset}/parts/llm/{method}_seed{seed}_scores.parquet",
        answers="results/{dataset}/bua/answers_{method}_seed{seed}.parquet",
    log:
        "logs/{dataset}/bua_predict_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_predict_{method}_seed{seed}.tsv"
    wildcard_constraints:
        method="|".join(BUA_METHODS),
        seed=r"\d+",
    priority: BUA_PRIORITY["predict"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA["inference_threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("bua_predict"),
        bua=BUA_SETTINGS,
        variant=get_bua_predict_variant,
        device=BUA["device"],
        dtype=BUA["dtype"],
    script:
        "../scripts/bua_predict.py"


rule bua_generate:
    input:
        unpack(get_bua_predict_inputs),
    output:
        days="results/{dataset}/bua/days/{method}_seed{seed}.parquet",
        answers="results/{dataset}/bua/days/{method}_seed{seed}_answers.parquet",
        metrics="results/{dataset}/parts/days/{method}_seed{seed}.csv",
    log:
        "logs/{dataset}/bua_generate_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/bua_generate_{method}_seed{seed}.tsv"
    wildcard_constraints:
        method="|".join(BUA_METHODS),
        seed=r"\d+",
    priority: BUA_PRIORITY["generate"]
    conda:
        "../envs/behaviorflow.yaml"
    threads: BUA["inference_threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("bua_generate"),
        bua=BUA_SETTINGS,
        variant=get_bua_predict_variant,
        sampling=config["generation"]["behaviorgen"]["sampling"],
        user_mix=config["generation"]["behaviorgen"]["user_mix"],
        fill_days=config["generation"]["behaviorgen"]["fill_days"],
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
        device=BUA["device"],
        dtype=BUA["dtype"],
    script:
        "../scripts/bua_generate.py"


rule generate_days:
    input:
        unpack(get_day_generation_inputs),
    output:
        days="results/{dataset}/bua/days/{generator}_seed{seed}.parquet",
        metrics="results/{dataset}/parts/days/{generator}_seed{seed}.csv",
    log:
        "logs/{dataset}/generate_days_{generator}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/generate_days_{generator}_seed{seed}.tsv"
    wildcard_constraints:
        generator="markov|behaviorgen",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=get_generation_gpus,
    params:
        code=library_code("generate_days"),
        days=BUA_DAY_KEYS,
        settings=get_generation_settings,
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
    script:
        "../scripts/generate_days.py"


rule day_downstream:
    input:
        unpack(get_day_downstream_inputs),
    output:
        metrics="results/{dataset}/parts/days/downstream_seed{seed}.csv",
        runs="results/{dataset}/bua/days/downstream_runs_seed{seed}.csv",
    log:
        "logs/{dataset}/day_downstream_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/day_downstream_seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("day_downstream"),
        generators=TABLE8_ROWS,
        days=BUA_DAY_KEYS,
        predictors=FINETUNE_PARAMS,
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/day_downstream.py"
