# Input functions and settings of the results-table rules (tables.smk).


def get_table_inputs(wildcards):
    """Every per-job part of one table (all datasets, predictors, seeds), the predictor weights
    they came from, and the generation summaries (model and adapter checksums) for provenance.
    """
    table1 = wildcards.table == "table1"
    train_sets = TRAIN_SETS if table1 else ["real"]
    return {
        "parts": (
            expand(
                "results/{dataset}/parts/table1/{model}_{train_set}_seed{seed}.csv",
                dataset=DATASETS,
                model=PREDICTORS,
                train_set=TRAIN_SETS,
                seed=SEEDS,
            )
            if table1
            else expand(
                "results/{dataset}/parts/finetune/{model}_seed{seed}.csv",
                dataset=DATASETS,
                model=PREDICTORS,
                seed=SEEDS,
            )
        ),
        "models": expand(
            "models/predictors/{dataset}/{model}/{train_set}/seed{seed}.pt",
            dataset=DATASETS,
            model=PREDICTORS,
            train_set=train_sets,
            seed=SEEDS,
        ),
        "summaries": expand(
            "data/synthetic/{dataset}/{generator}/{part}_summary.json",
            dataset=DATASETS,
            generator=GENERATORS,
            part="population" if table1 else "personal",
        ),
    }


def get_table4_inputs(wildcards):
    if not ABLATION["variants"]:
        raise WorkflowError(
            "results/table4.csv needs the prompt ablation: set validation.ablation.variants "
            "(e.g. [full, no_role, no_profile, no_format, no_segment])"
        )
    return {
        "fidelity": expand(
            "results/{dataset}/parts/validation/{source}_fidelity.csv",
            dataset=DATASETS,
            source=ABLATION_SOURCES,
        ),
        "summaries": expand(
            "data/synthetic/{dataset}/ablation/{variant}/seed{seed}/generation_summary.json",
            dataset=DATASETS,
            variant=ABLATION["variants"],
            seed=ABLATION["seeds"],
        ),
    }


def _pretrained(kind, dataset):
    """Paths of the real-data pretraining runs of one dataset (every predictor and seed)."""
    return expand(
        "results/{dataset}/parts/table1/{model}_real_seed{seed}.{kind}",
        dataset=dataset,
        model=PREDICTORS,
        seed=SEEDS,
        kind=kind,
    )


def get_leaderboard_inputs(wildcards):
    """Every dataset's counting rows and structure, and its pretrained predictors' rows, histories
    (the query fingerprints) and weights."""
    inputs = {
        "parts": expand(
            "results/{dataset}/parts/leaderboard/counting.csv", dataset=DATASETS
        ),
        "models": expand(
            "models/predictors/{dataset}/{model}/real/seed{seed}.pt",
            dataset=DATASETS,
            model=PREDICTORS,
            seed=SEEDS,
        ),
    }
    if BLM_DATASETS:  # table 5's rows: the LLM row set
        inputs["llm_parts"] = get_llm_table_inputs(wildcards, "table5")["parts"]
        inputs["llm_parts"] += bua_parts(
            ["bua"]
        )  # BUA beside them, on the same queries
    for dataset in DATASETS:
        inputs["parts"] += _pretrained("csv", dataset)
        inputs[f"structure_{dataset}"] = f"results/{dataset}/structure.json"
        inputs[f"fingerprints_{dataset}"] = [
            f"results/{dataset}/structure.json",
            *_pretrained("json", dataset),
        ]
    return inputs
