# Validated config, the names every stage shares, the data stages' input functions, and the
# library code each job runs (its params hold `code=library_code(...)`, so editing that code reruns it).
from dataclasses import asdict
from pathlib import Path

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
from behaviorflow.codedeps import code_version
from behaviorflow.data.ingest import raw_inputs

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
_bg_api = "behaviorgen" in config["generation"]["generators"]
_bg_api = _bg_api and _bg["backend"] == "openai"
# BUA's LLM-written curriculum answers use the same endpoint.
_bua_api = config["bua"]["answers"]["source"] == "openai"
if _bg_api or _bua_api:
    _api_key_env = _bg["openai"]["key_env"]
    KEY_ENVS = sorted(set(KEY_ENVS) | ({_api_key_env} if _api_key_env else set()))
if KEY_ENVS:

    envvars:
        *KEY_ENVS,


def library_code(rule, notebook=None):
    """Version of the library code that `rule` runs (its script's and notebook's behaviorflow
    imports, transitively); in a rule's params, a change of that code reruns the rule.
    """
    base = Path(workflow.basedir) / "workflow"
    sources = [base / "scripts" / f"{rule}.py"]
    if notebook:
        sources.append(base / "notebooks" / f"{notebook}.ipynb")
    return code_version(*sources)


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


ABLATION = config["validation"]["ablation"]
ABLATION_SOURCES = [
    f"ablation-{variant}-seed{seed}"
    for variant in ABLATION["variants"]
    for seed in ABLATION["seeds"]
]
# BehaviorLM and the LLM prediction rows (behaviorlm.smk): on which datasets, and what every
# training stage and every scoring job depends on (seeds are wildcards, not params).
BEHAVIORLM = config["behaviorlm"]
BLM_DATASETS = (
    DATASETS if BEHAVIORLM["datasets"] is None else sorted(BEHAVIORLM["datasets"])
)
BLM_SEEDS = BEHAVIORLM["seeds"]
BEHAVIORLM_TRAIN = {
    k: BEHAVIORLM[k]
    for k in (
        "tuning",
        "prompt",
        "train_examples",
        "anchor_share",
        "aux_share",
        "aux_corpus",
        "device",
        "processes",
    )
}
BEHAVIORLM_SCORE = {
    k: BEHAVIORLM[k] for k in ("prompt", "queries", "query_seed", "device", "dtype")
}
# BUA (bua.smk; its settings and inputs: inputs/bua.smk): on which datasets.
BUA = config["bua"]
BUA_DATASETS = BLM_DATASETS if BUA["datasets"] is None else sorted(BUA["datasets"])
# The results tables rule all builds (table 4 only with the prompt ablation, tables 5-6 with
# BehaviorLM datasets, 7-9 with BUA datasets) and the leaderboard.
TABLES = (
    ["table1", "table2", "table3"]
    + (["table4"] if ABLATION["variants"] else [])
    + (["table5", "table6"] if BLM_DATASETS else [])
    + (["table7", "table8", "table9"] if BUA_DATASETS else [])
    + ["leaderboard"]
)
# Splits whose users some generator sees; the others are the privacy holdout.
SHOWN_SPLITS = sorted(
    set(config["generation"]["personal_splits"])
    | ({ABLATION["split"]} if ABLATION["variants"] else set())
)
