# Fidelity and privacy of every generator's synthetic data and of every prompt-ablation run.


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
        code=library_code("validate_synthetic"),
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
        code=library_code("validation_report"),
        config=RESULT_CONFIG,
    script:
        "../scripts/validation_report.py"
