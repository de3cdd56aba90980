# Input functions and settings of the validation rules (validate.smk).


def validation_inputs(dataset, source):
    """The split and profiles, and the synthetic sets of one source (a generator or an ablation run)."""
    data = f"data/processed/{dataset}"
    inputs = {"split": f"{data}/split.parquet", "profiles": f"{data}/profiles.parquet"}
    if source.startswith("ablation-"):
        variant, seed = source.removeprefix("ablation-").rsplit("-seed", 1)
        run = f"data/synthetic/{dataset}/ablation/{variant}/seed{seed}"
        inputs.update(
            ablation=f"{run}/weeks.parquet", summary=f"{run}/generation_summary.json"
        )
    else:
        run = f"data/synthetic/{dataset}/{source}"
        for part in ("population", "personal"):
            inputs[part] = f"{run}/{part}.parquet"
            inputs[f"{part}_summary"] = f"{run}/{part}_summary.json"
    return inputs


def get_validation_inputs(wildcards):
    return validation_inputs(wildcards.dataset, wildcards.source)


def get_validation_parts(wildcards):
    """Every source's fidelity and privacy parts of one dataset."""
    return expand(
        "results/{dataset}/parts/validation/{source}_{kind}.csv",
        dataset=wildcards.dataset,
        source=GENERATORS + ABLATION_SOURCES,
        kind=["fidelity", "privacy"],
    )


def get_validation_data(wildcards):
    """What the validation parts of one dataset were computed from (for the provenance sidecars)."""
    files = set()
    for source in GENERATORS + ABLATION_SOURCES:
        files |= set(validation_inputs(wildcards.dataset, source).values())
    return sorted(files)
