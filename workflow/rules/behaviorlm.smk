# BehaviorLM (arXiv 2505.17682) and the LLM prediction rows (tables 5-6): A-tuning on anchor
# behaviours (+ general conversation), difficulty selection by the A-tuned model, B-tuning of the
# same adapter, and scoring every label for the fixed LLM test queries. Every training stage runs
# on lm.tuning (transformers.Trainer + peft) and is GPU-tagged; `arm` names what a first stage
# trains on (anchor: anchors + conversation; no_aux: anchors only; full: every behaviour, the
# paper's traditional fine-tuning; tail: the non-anchors, the tail-first ablation's first stage).
# A training stage with behaviorlm.processes > 1 runs under torchrun and asks for that many GPUs.


rule behaviorlm_atune:
    input:
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
    output:
        adapter=directory("models/behaviorlm/{dataset}/atune_{arm}/seed{seed}"),
    log:
        "logs/{dataset}/behaviorlm_atune_{arm}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/behaviorlm_atune_{arm}_seed{seed}.tsv"
    wildcard_constraints:
        arm="anchor|no_aux|full|tail",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BEHAVIORLM["processes"],
    params:
        code=library_code("behaviorlm_atune"),
        stage=get_atune_stage,
        settings=BEHAVIORLM_TRAIN,
    script:
        "../scripts/behaviorlm_atune.py"


rule behaviorlm_tail_first:
    input:
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        init="models/behaviorlm/{dataset}/atune_tail/seed{seed}",
    output:
        adapter=directory("models/behaviorlm/{dataset}/tail_first/seed{seed}"),
    log:
        "logs/{dataset}/behaviorlm_tail_first_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/behaviorlm_tail_first_seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BEHAVIORLM["processes"],
    params:
        code=library_code("behaviorlm_atune"),
        stage={"anchors_only": True, "order": "anchor", "aux": True},
        settings=BEHAVIORLM_TRAIN,
    script:
        "../scripts/behaviorlm_atune.py"


rule behaviorlm_score_pool:
    input:
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        adapter="models/behaviorlm/{dataset}/atune_{arm}/seed{seed}",
    output:
        pool="results/{dataset}/behaviorlm/pool_{arm}_seed{seed}.parquet",
    log:
        "logs/{dataset}/behaviorlm_score_pool_{arm}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/behaviorlm_score_pool_{arm}_seed{seed}.tsv"
    wildcard_constraints:
        arm="anchor|no_aux",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("behaviorlm_score_pool"),
        settings=BEHAVIORLM_SCORE,
        pool=BEHAVIORLM["select"]["pool"],
    script:
        "../scripts/behaviorlm_score_pool.py"


rule behaviorlm_select:
    input:
        split="data/processed/{dataset}/split.parquet",
        pool="results/{dataset}/behaviorlm/pool_{arm}_seed{seed}.parquet",
    output:
        selected="results/{dataset}/behaviorlm/select_{how}_{arm}_F{per_label}_seed{seed}.parquet",
        report="results/{dataset}/behaviorlm/select_{how}_{arm}_F{per_label}_seed{seed}.json",
    log:
        "logs/{dataset}/behaviorlm_select_{how}_{arm}_F{per_label}_seed{seed}.log",
    wildcard_constraints:
        how="difficulty|random",
        arm="anchor|no_aux",
        per_label=r"\d+",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("behaviorlm_select"),
        prompt=BEHAVIORLM["prompt"],
    script:
        "../scripts/behaviorlm_select.py"


rule behaviorlm_btune:
    input:
        model=get_behaviorlm_model,
        split="data/processed/{dataset}/split.parquet",
        init="models/behaviorlm/{dataset}/atune_{arm}/seed{seed}",
        selected="results/{dataset}/behaviorlm/select_{how}_{arm}_F{per_label}_seed{seed}.parquet",
    output:
        adapter=directory(
            "models/behaviorlm/{dataset}/btune_{how}_{arm}_F{per_label}/seed{seed}"
        ),
    log:
        "logs/{dataset}/behaviorlm_btune_{how}_{arm}_F{per_label}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/behaviorlm_btune_{how}_{arm}_F{per_label}_seed{seed}.tsv"
    wildcard_constraints:
        how="difficulty|random",
        arm="anchor|no_aux",
        per_label=r"\d+",
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"] * BEHAVIORLM["processes"],
    params:
        code=library_code("behaviorlm_btune"),
        settings=BEHAVIORLM_TRAIN,
        btune=config["behaviorlm"]["btune"],
    script:
        "../scripts/behaviorlm_btune.py"


rule behaviorlm_predict:
    input:
        unpack(get_llm_predict_inputs),
    output:
        metrics="results/{dataset}/parts/llm/{method}_seed{seed}.csv",
        scores="results/{dataset}/parts/llm/{method}_seed{seed}_scores.parquet",
    log:
        "logs/{dataset}/behaviorlm_predict_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/{dataset}/behaviorlm_predict_{method}_seed{seed}.tsv"
    wildcard_constraints:
        method="|".join(LLM_METHOD_PATTERNS),
        seed=r"\d+",
    conda:
        "../envs/behaviorflow.yaml"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=240,
        gpu=config["resources"]["gpu"],
    params:
        code=library_code("behaviorlm_predict"),
        settings=BEHAVIORLM_SCORE,
    script:
        "../scripts/behaviorlm_predict.py"


rule sequential_on_llm_queries:
    input:
        split="data/processed/{dataset}/split.parquet",
        models=get_pretrained_models,
    output:
        metrics="results/{dataset}/parts/llm/sequential.csv",
    log:
        "logs/{dataset}/sequential_on_llm_queries.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("sequential_on_llm_queries"),
        settings=BEHAVIORLM_SCORE,
        predictors=PRETRAIN_PARAMS,
        slot_minutes=config["slot_minutes"],
    script:
        "../scripts/sequential_on_llm_queries.py"
