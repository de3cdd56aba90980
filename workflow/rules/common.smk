# Validated config and every input function of the workflow.
from dataclasses import asdict

from snakemake.utils import validate

from behaviorflow.config import (
    ConfigError,
    anonymization_settings,
    check_config,
    dataset_settings,
    schema_problems,
    simulation_settings,
    split_settings,
)
from behaviorflow.ingest import raw_inputs

# Plain messages naming each bad key first; then Snakemake's validate fills in the defaults.
_problems = schema_problems(
    config, workflow.source_path("../schemas/config.schema.yaml")
)
if _problems:
    raise WorkflowError("invalid config:\n  " + "\n  ".join(_problems))
validate(config, schema="../schemas/config.schema.yaml")
try:
    check_config(config, base_dir=".")
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

DATASETS = sorted(config["datasets"])
# What the results depend on, for the tables' params and provenance: the config without
# `resources` (where jobs run), so a cluster profile's GPU overlay reruns no table.
RESULT_CONFIG = {k: v for k, v in config.items() if k != "resources"}
SIMULATED = [d for d in DATASETS if config["datasets"][d]["format"] == "simulated"]


wildcard_constraints:
    dataset="|".join(DATASETS),


# Datasets whose pseudonyms need a real secret key, and the LLM API, declare their key variables, so Snakemake fails
# early when it is unset and passes it to cluster jobs; it never enters params, logs or outputs.
_api = config.get("generation", {}).get("behaviorgen", {}).get("openai", {})
KEY_ENVS = sorted(
    {
        anonymization_settings(config, d).key_env
        for d in DATASETS
        if not (
            config["datasets"][d]["format"] == "simulated"
            and anonymization_settings(config, d).allow_fixed_key
        )
    }
)
_bg = config["generation"]["behaviorgen"]
if "behaviorgen" in config["generation"]["generators"] and _bg["backend"] == "openai":
    _api_key_env = config["generation"]["behaviorgen"]["openai"]["key_env"]
    KEY_ENVS = sorted(set(KEY_ENVS) | ({_api_key_env} if _api_key_env else set()))
if KEY_ENVS:

    envvars:
        *KEY_ENVS,


def get_raw_inputs(wildcards):
    """Raw files read by ingestion (the simulator's log, or the configured input)."""
    return raw_inputs(dataset_settings(config, wildcards.dataset), wildcards.dataset)


def get_dataset_settings(wildcards):
    return asdict(dataset_settings(config, wildcards.dataset))


def get_simulation_settings(wildcards):
    return asdict(simulation_settings(config, wildcards.dataset))


def get_anonymization_settings(wildcards):
    return asdict(anonymization_settings(config, wildcards.dataset))


def get_dataset_format(wildcards):
    return config["datasets"][wildcards.dataset]["format"]


def get_split_settings(wildcards):
    return asdict(split_settings(config))


GENERATORS = config["generation"]["generators"]


def generation_settings(generator):
    """What one generator depends on (so changing the other's settings reruns nothing here)."""
    gen = config["generation"]
    own = {"markov": ["markov"], "behaviorgen": ["behaviorgen", "cache_dir"]}[generator]
    keys = ["weeks", "population_users", "personal_splits", "seed", *own]
    return {k: gen[k] for k in keys}


def get_generation_settings(wildcards):
    return generation_settings(wildcards.generator)


def get_generator_model(wildcards):
    """The local generator model directory: the converted embedded model or a configured path."""
    model = config["generation"]["behaviorgen"]["transformers"]["model"]
    return "models/smollm2-135m-instruct" if model == "embedded" else model


def get_generation_inputs(wildcards, generator=None):
    """Split and profiles; for BehaviorGen on a local model also the model and (tuned) adapter."""
    inputs = {
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "profiles": f"data/processed/{wildcards.dataset}/profiles.parquet",
    }
    bg = config["generation"]["behaviorgen"]
    generator = generator or wildcards.generator
    if generator == "behaviorgen" and bg["backend"] == "transformers":
        inputs["model"] = get_generator_model(wildcards)
        if bg["transformers"]["tune"]:
            inputs["adapter"] = f"models/adapters/{wildcards.dataset}/behaviorgen"
    return inputs


def get_generation_gpus(wildcards, generator=None):
    """GPUs only where a model runs: BehaviorGen on a local model."""
    local = config["generation"]["behaviorgen"]["backend"] == "transformers"
    generator = generator or wildcards.generator
    return config["resources"]["gpu"] if generator == "behaviorgen" and local else 0


def get_top_zones(wildcards):
    return anonymization_settings(config, wildcards.dataset).top_zones


PREDICTORS = config["predictors"]["models"]
SEEDS = config["predictors"]["seeds"]
TRAIN_SETS = ["real", *(f"aug-{g}" for g in GENERATORS)]
# What one predictor job depends on: adding a seed or a model reruns no existing job, and
# fine-tuning settings do not touch pretraining.
_SHARED = {"seeds", "models", "runtime", "threads"}
PRETRAIN_PARAMS = {
    k: v for k, v in config["predictors"].items() if k not in _SHARED | {"finetune"}
}
FINETUNE_PARAMS = {k: v for k, v in config["predictors"].items() if k not in _SHARED}


def get_pretrain_inputs(wildcards):
    """The split; for an augmented training set also the generator's synthetic population."""
    inputs = {"split": f"data/processed/{wildcards.dataset}/split.parquet"}
    if wildcards.train_set.startswith("aug-"):
        generator = wildcards.train_set.removeprefix("aug-")
        inputs["synthetic"] = (
            f"data/synthetic/{wildcards.dataset}/{generator}/population.parquet"
        )
    return inputs


def get_finetune_inputs(wildcards):
    """The real-pretrained predictor of the same seed, the split, every generator's personal data."""
    inputs = {
        "model": f"models/predictors/{wildcards.dataset}/{wildcards.model}/real/seed{wildcards.seed}.pt",
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
    }
    for g in GENERATORS:
        inputs[f"personal_{g}"] = (
            f"data/synthetic/{wildcards.dataset}/{g}/personal.parquet"
        )
    return inputs


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


ABLATION = config["validation"]["ablation"]
ABLATION_SOURCES = [
    f"ablation-{variant}-seed{seed}"
    for variant in ABLATION["variants"]
    for seed in ABLATION["seeds"]
]
# The results tables rule all builds (table 4 only with the prompt ablation).
TABLES = ["table1", "table2", "table3"] + (["table4"] if ABLATION["variants"] else [])
# Splits whose users some generator sees; the others are the privacy holdout.
SHOWN_SPLITS = sorted(
    set(config["generation"]["personal_splits"])
    | ({ABLATION["split"]} if ABLATION["variants"] else set())
)


def ablation_dir(wildcards):
    return f"data/synthetic/{wildcards.dataset}/ablation/{wildcards.variant}/seed{wildcards.seed}"


def get_ablation_inputs(wildcards):
    return get_generation_inputs(wildcards, "behaviorgen")


def get_ablation_gpus(wildcards):
    return get_generation_gpus(wildcards, "behaviorgen")


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


def get_result_files():
    """Every result the manifest covers: tables with summaries and pages, fidelity and privacy."""
    per_table = ["{table}.csv", "{table}_summary.csv", "{table}.md"]
    return expand([f"results/{name}" for name in per_table], table=TABLES) + expand(
        "results/{dataset}/{kind}.csv", dataset=DATASETS, kind=["fidelity", "privacy"]
    )


def get_report_labels(wildcards):
    """The labels a report notebook is parameterised with: its wildcards (dataset or table)."""
    return dict(wildcards.items())


def get_fidelity_privacy_report_inputs(wildcards):
    """The split, the dataset's fidelity and privacy reports, and every generator's synthetic data."""
    inputs = {
        "template": "workflow/notebooks/fidelity_privacy.ipynb",
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "fidelity": f"results/{wildcards.dataset}/fidelity.csv",
        "privacy": f"results/{wildcards.dataset}/privacy.csv",
    }
    for generator in GENERATORS:
        for part in ("population", "personal"):
            inputs[f"{generator}_{part}"] = (
                f"data/synthetic/{wildcards.dataset}/{generator}/{part}.parquet"
            )
    return inputs


def get_report_files():
    """Every rendered report page (HTML) and the figures they embed."""
    return (
        expand(
            "reports/{dataset}_{page}.html",
            dataset=DATASETS,
            page=["data_overview", "fidelity_privacy"],
        )
        + expand(
            "reports/figures/{dataset}_{figure}.png",
            dataset=DATASETS,
            figure=[
                "behaviour_shares",
                "activity",
                "user_distributions",
                "time_of_day",
            ],
        )
        + expand("reports/{table}.html", table=TABLES)
        + expand("reports/figures/{table}.png", table=TABLES)
    )


def get_manifest_files():
    """What the manifest covers: every result and report, and each dataset's anonymisation report,
    whose key id shows a run with another pseudonym key at once."""
    return (
        get_result_files()
        + get_report_files()
        + expand("data/processed/{dataset}/anonymization_report.json", dataset=DATASETS)
    )


def get_final_targets():
    """Every result and report, and the manifest of their checksums (what an auditor verifies)."""
    return get_result_files() + get_report_files() + ["results/MANIFEST.sha256"]
