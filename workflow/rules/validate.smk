# Fidelity and privacy of every generator's synthetic data, and BehaviorGen's prompt ablation
# (table 4): each variant generates for the same fixed users with the same seeds.


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
        settings={
            k: config["generation"][k] for k in ("seed", "behaviorgen", "cache_dir")
        },
        ablation={k: v for k, v in ABLATION.items() if k not in ("variants", "seeds")},
        slot_minutes=config["slot_minutes"],
        top_zones=get_top_zones,
    script:
        "../scripts/generate_ablation.py"


rule validate_synthetic:
    input:
        unpack(get_validation_inputs),
    output:
        fidelity="results/{dataset}/parts/validation/{source}_fidelity.csv",
        privacy="results/{dataset}/parts/validation/{source}_privacy.csv",
    log:
        "logs/{dataset}/validate_{source}.log",
    wildcard_constraints:
        source="|".join(GENERATORS + ABLATION_SOURCES),
    conda:
        "../envs/behaviorflow.yaml"
    params:
        privacy=config["validation"]["privacy"],
        shown_splits=SHOWN_SPLITS,
        generation={
            "seed": config["generation"]["seed"],
            "behaviorgen": {"variant": config["generation"]["behaviorgen"]["variant"]},
        },
    script:
        "../scripts/validate_synthetic.py"


rule validation_report:
    input:
        parts=get_validation_parts,
        data=get_validation_data,
    output:
        fidelity=report(
            "results/{dataset}/fidelity.csv",
            caption="../report/fidelity.rst",
            category="Fidelity and privacy",
            subcategory="{dataset}",
        ),
        privacy=report(
            "results/{dataset}/privacy.csv",
            caption="../report/privacy.rst",
            category="Fidelity and privacy",
            subcategory="{dataset}",
        ),
        fidelity_provenance="results/{dataset}/fidelity.provenance.json",
        privacy_provenance="results/{dataset}/privacy.provenance.json",
    log:
        "logs/{dataset}/validation_report.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        config=RESULT_CONFIG,
    script:
        "../scripts/validation_report.py"


rule table4:
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
        config=RESULT_CONFIG,
        ablation=ABLATION,
        constrained=config["generation"]["behaviorgen"]["constrained"]
        and config["generation"]["behaviorgen"]["backend"] == "transformers",
    script:
        "../scripts/make_table4.py"


rule manifest:
    input:
        get_manifest_files(),
    output:
        "results/MANIFEST.sha256",
    log:
        "logs/manifest.log",
    conda:
        "../envs/behaviorflow.yaml"
    script:
        "../scripts/write_manifest.py"
