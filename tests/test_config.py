"""Config: schema messages, semantic checks, and environment.yml kept in step with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from behaviorflow.config import (
    ConfigError,
    check_config,
    dataset_settings,
    schema_problems,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_default_config_is_valid():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert schema_problems(config, SCHEMA) == []
    check_config(config, base_dir=REPO)
    # the simulated dataset's labels are the phone log's event types, which ingestion applies
    assert dataset_settings(config, "simulated").vocabulary is None


@pytest.mark.parametrize("config,expected", [
    ({"datasets": {"x": {"format": "nosuch", "path": "a"}}},
     "datasets.x.format: 'nosuch' is not one of ['simulated', 'checkins_csv', 'foursquare_tsmc2014', 'generic']"),
    ({"datasets": {"s": {"format": "simulated"}}, "slot_minutes": "half"}, "slot_minutes: 'half' is not of type 'integer'"),
    ({"datasets": {"s": {"format": "simulated", "simulation": {"n_users": 3}}}},
     "datasets.s.simulation.n_users: 3 is less than the minimum of 10"),
    ({"datasets": {"s": {"format": "simulated", "colour": 1}}}, "datasets.s: Additional properties are not allowed"),
    ({"datasets": {}}, "datasets: {} should be non-empty"),
])
def test_schema_problems_name_the_key(config, expected):
    problems = schema_problems(config, SCHEMA)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("dataset,message", [
    ({"format": "checkins_csv", "path": "no/such.csv"}, "datasets.d.path: input file 'no/such.csv' does not exist"),
    ({"format": "checkins_csv"}, "datasets.d.path is required for format 'checkins_csv'"),
    ({"format": "simulated", "path": "x.csv"}, "datasets.d.path: format 'simulated' writes its own raw log"),
    ({"format": "generic", "path": "pyproject.toml"}, "datasets.d.columns is required for format 'generic'"),
    ({"format": "checkins_csv", "path": "pyproject.toml", "anonymization": {"allow_fixed_key": True}},
     "the fixed key is only allowed for simulated data"),
    ({"format": "checkins_csv", "path": "pyproject.toml", "vocabulary": "no/vocab.txt"},
     "vocabulary file 'no/vocab.txt' does not exist"),
    ({"format": "simulated", "anonymization": {"k": "five"}}, "datasets.d.anonymization.k: 'five' is not of type 'int'"),
    ({"format": "simulated", "anonymization": {"salt": 1}}, "datasets.d.anonymization: unknown key(s) ['salt']"),
    ({"format": "checkins_csv", "path": "pyproject.toml", "vocabulary": ["a", "b", "c"], "taxonomy": {"a": "x"}},
     "datasets.d.taxonomy: 2 vocabulary label(s) without a category: ['b', 'c']"),
])
def test_semantic_checks(dataset, message):
    with pytest.raises(ConfigError) as err:
        check_config({"datasets": {"d": dataset}}, base_dir=REPO)
    assert message in str(err.value)


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ConfigError, match="must be 1"):
        check_config({"datasets": {"s": {"format": "simulated"}}, "split": {"train": 0.7, "val": 0.1, "test": 0.1}})


def _normalise(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip())
    name, spec = m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")
    return {"python-duckdb": "duckdb"}.get(name, name), spec


@pytest.mark.parametrize("env_file", ["environment.yml", "workflow/envs/behaviorflow.yaml"])
def test_environment_yml_in_step_with_pyproject(env_file):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / env_file).read_text())
    have = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep["pip"]:
                if not pip_dep.startswith("-e"):
                    have.update([_normalise(pip_dep)])
        elif not dep.startswith(("python=", "pip")):
            have.update([_normalise(dep)])
    assert have == wanted
    assert env["channels"][0] == "conda-forge"
    assert "torch==2.13.0" in project["dependencies"]


def settings_classes():
    from behaviorflow.behaviorgen.generate import LLMGenerationSettings
    from behaviorflow.behaviorlm.prompts import PromptSettings
    from behaviorflow.config import AnonymizationSettings, DatasetSettings, SimulationSettings, SplitSettings
    from behaviorflow.lm.backends import Sampling
    from behaviorflow.lm.tuning import TuningSettings
    from behaviorflow.predictors.models import FitSettings, ModelSettings
    from behaviorflow.predictors.scenarios import PredictorSettings

    return [SimulationSettings, AnonymizationSettings, SplitSettings, DatasetSettings, TuningSettings, ModelSettings,
            FitSettings, PredictorSettings, LLMGenerationSettings, Sampling, PromptSettings]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_every_settings_default_is_the_schemas():
    import dataclasses

    from behaviorflow.config import schema_defaults

    for cls in settings_classes():
        defaults = schema_defaults(cls.SCHEMA_POINTER)
        checked = 0
        for f in dataclasses.fields(cls):
            if f.name in defaults and f.name not in cls.SCHEMA_LOCAL and f.default is not dataclasses.MISSING:
                assert _plain(f.default) == defaults[f.name], f"{cls.__name__}.{f.name}"
                checked += 1
        assert checked, cls.__name__


@pytest.mark.parametrize("pointer,cls_name,exempt", [
    ("$defs/simulation", "SimulationSettings", set()),
    ("$defs/anonymization", "AnonymizationSettings", {"slot_minutes"}),
    ("properties/split", "SplitSettings", set()),
    ("$defs/tuning", "TuningSettings", set()),
    ("$defs/fit", "FitSettings", set()),
    ("$defs/behaviorlm_prompt", "PromptSettings", set()),
])
def test_settings_and_their_schema_section_have_the_same_keys(pointer, cls_name, exempt):
    import dataclasses

    from behaviorflow.config import schema_node

    cls = next(c for c in settings_classes() if c.__name__ == cls_name)
    assert {f.name for f in dataclasses.fields(cls)} - exempt == set(schema_node(pointer)["properties"])


def test_a_settings_field_the_schema_lacks_fails_at_import():
    from dataclasses import dataclass

    from behaviorflow.config import from_schema

    with pytest.raises(TypeError, match="colour is not a property of the config schema"):
        @dataclass(frozen=True)
        @from_schema("properties/split")
        class Drifted:
            seed: int
            colour: str


def test_validated_config_and_settings_classes_agree_on_every_default():
    """What Snakemake's validation fills in equals what the library builds from nothing."""
    from snakemake.utils import validate

    from behaviorflow.config import split_settings
    from behaviorflow.lm.tuning import TuningSettings
    from behaviorflow.predictors.scenarios import PredictorSettings

    config = {"datasets": {"s": {"format": "simulated"}}}
    validate(config, str(SCHEMA))
    assert TuningSettings(**config["generation"]["behaviorgen"]["transformers"]["lora"]) == TuningSettings()
    assert PredictorSettings.from_config(config["predictors"]) == PredictorSettings()
    assert PredictorSettings().finetune.lr == 0.0005 and PredictorSettings().pretrain.lr == 0.001
    assert split_settings(config) == split_settings({})
    assert PredictorSettings.from_config({"pretrain": {"max_epochs": 2}}).pretrain.max_epochs == 2
