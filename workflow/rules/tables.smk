# The results tables: BehaviorGen's scenarios (tables 1-3, from the predictor jobs' parts) and its
# prompt ablation (table 4, from the ablation runs' fidelity). Each: long CSV, summary, page, provenance.


rule scenario_table:
    input:
        unpack(get_table_inputs),
    output:
        table=report(
            "results/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{table}",
        ),
        summary="results/{table}_summary.csv",
        page="results/{table}.md",
        provenance="results/{table}.provenance.json",
    log:
        "logs/{table}.log",
    wildcard_constraints:
        table="table1|table2|table3",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("scenario_table"),
        config=RESULT_CONFIG,
        seeds=config["predictors"]["seeds"],
    script:
        "../scripts/scenario_table.py"


rule ablation_table:
    input:
        unpack(get_table4_inputs),
    output:
        table=report(
            "results/table4.csv",
            caption="../report/table4.rst",
            category="Tables",
            subcategory="table4",
        ),
        summary="results/table4_summary.csv",
        page="results/table4.md",
        provenance="results/table4.provenance.json",
    log:
        "logs/table4.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("ablation_table"),
        config=RESULT_CONFIG,
        ablation=ABLATION,
        constrained=config["generation"]["behaviorgen"]["constrained"]
        and config["generation"]["behaviorgen"]["backend"] == "transformers",
    script:
        "../scripts/ablation_table.py"


rule leaderboard_table:
    input:
        unpack(get_leaderboard_inputs),
    output:
        table=report(
            "results/leaderboard.csv",
            caption="../report/leaderboard.rst",
            category="Tables",
            subcategory="leaderboard",
        ),
        summary="results/leaderboard_summary.csv",
        page="results/leaderboard.md",
        provenance="results/leaderboard.provenance.json",
    log:
        "logs/leaderboard.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("leaderboard_table"),
        config=RESULT_CONFIG,
        seeds=config["predictors"]["seeds"],
        datasets=DATASETS,
    script:
        "../scripts/leaderboard_table.py"


rule llm_table:
    input:
        unpack(get_llm_table_inputs),
    output:
        table=report(
            "results/{table}.csv",
            caption="../report/llm_table.rst",
            category="Tables",
            subcategory="{table}",
        ),
        summary="results/{table}_summary.csv",
        page="results/{table}.md",
        provenance="results/{table}.provenance.json",
    log:
        "logs/{table}.log",
    wildcard_constraints:
        table="table5|table6|table7|table9",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("llm_table"),
        config=RESULT_CONFIG,
        seeds=lambda wildcards: (
            BUA_SEEDS if wildcards.table in ("table7", "table9") else BLM_SEEDS
        ),
    script:
        "../scripts/llm_table.py"


rule generation_table:
    input:
        unpack(lambda wildcards: get_bua_table_inputs(wildcards, "table8")),
    output:
        table=report(
            "results/table8.csv",
            caption="../report/generation_table.rst",
            category="Tables",
            subcategory="table8",
        ),
        summary="results/table8_summary.csv",
        page="results/table8.md",
        provenance="results/table8.provenance.json",
    log:
        "logs/table8.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("generation_table"),
        config=RESULT_CONFIG,
        seeds=BUA_SEEDS,
    script:
        "../scripts/generation_table.py"
