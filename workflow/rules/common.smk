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


def get_generation_settings(wildcards):
    """What one generator depends on (so changing the other's settings reruns nothing here)."""
    gen = config["generation"]
    own = {"markov": ["markov"], "behaviorgen": ["behaviorgen", "cache_dir"]}[
        wildcards.generator
    ]
    keys = ["weeks", "population_users", "seed", *own]
    return {k: gen[k] for k in keys}


def get_generator_model(wildcards):
    """The local generator model directory: the converted embedded model or a configured path."""
    model = config["generation"]["behaviorgen"]["transformers"]["model"]
    return "models/smollm2-135m-instruct" if model == "embedded" else model


def get_generation_inputs(wildcards):
    """Split and profiles; for BehaviorGen on a local model also the model and (tuned) adapter."""
    inputs = {
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "profiles": f"data/processed/{wildcards.dataset}/profiles.parquet",
    }
    bg = config["generation"]["behaviorgen"]
    if wildcards.generator == "behaviorgen" and bg["backend"] == "transformers":
        inputs["model"] = get_generator_model(wildcards)
        if bg["transformers"]["tune"]:
            inputs["adapter"] = f"models/adapters/{wildcards.dataset}/behaviorgen"
    return inputs


def get_generation_gpus(wildcards):
    """GPUs only where a model runs: BehaviorGen on a local model."""
    local = config["generation"]["behaviorgen"]["backend"] == "transformers"
    return (
        config["resources"]["gpu"]
        if wildcards.generator == "behaviorgen" and local
        else 0
    )


def get_top_zones(wildcards):
    return anonymization_settings(config, wildcards.dataset).top_zones


def get_final_targets():
    """Deepest outputs that exist so far: synthetic data of every dataset and generator."""
    return expand(
        "data/synthetic/{dataset}/{generator}/{name}.parquet",
        dataset=DATASETS,
        generator=GENERATORS,
        name=["population", "personal"],
    )
