"""Which library modules a rule runs (its code version): followed through imports, nothing else."""

import json

import pytest

from behaviorflow.codedeps import code_version, library_modules
from conftest import REPO


def test_modules_are_followed_through_imports_inside_functions(tmp_path):
    script = tmp_path / "rule.py"
    script.write_text("from behaviorflow.predictors.scenarios import pretrain_predictor\n")
    modules = library_modules(script)
    # scenarios imports models and sequences at the top and atomic inside a function
    assert {"behaviorflow.predictors.scenarios", "behaviorflow.predictors.models", "behaviorflow.predictors.sequences",
            "behaviorflow.atomic", "behaviorflow.config"} <= set(modules)
    assert not any(m.startswith(("behaviorflow.behaviorgen", "behaviorflow.lm", "behaviorflow.validation"))
                   for m in modules)


def test_a_notebooks_code_cells_count_and_its_magics_do_not_break_parsing(tmp_path):
    nb = tmp_path / "report.ipynb"
    cells = [{"cell_type": "markdown", "source": ["from behaviorflow.lm import tuning"]},
             {"cell_type": "code", "source": ["%matplotlib inline\n", "from behaviorflow.reporting import figures\n"]}]
    nb.write_text(json.dumps({"cells": cells}))
    assert "behaviorflow.reporting.figures" in library_modules(nb)
    assert "behaviorflow.lm.tuning" not in library_modules(nb)  # markdown is not code


def test_every_rule_script_reaches_a_function_named_after_its_rule():
    for script in sorted((REPO / "workflow/scripts").glob("*.py")):
        text = script.read_text()
        assert f"import {script.stem}\n" in text and f"\n{script.stem}(" in text, script.name
        assert library_modules(script), script.name


def test_the_version_changes_with_the_code_and_only_with_it(tmp_path):
    script = REPO / "workflow/scripts/pretrain_predictor.py"
    assert code_version(script) == code_version(script)
    assert code_version(script) != code_version(REPO / "workflow/scripts/ingest.py")
    assert len(code_version(script)) == 16


def test_a_source_edited_after_it_was_read_is_followed_anew(tmp_path):
    """The import scan is cached within a process (the workflow asks for it ~900 times when it
    parses); an edit between two calls must still be seen, and the version must follow it."""
    script = tmp_path / "rule.py"
    script.write_text("from behaviorflow.validation.metrics import validate_synthetic\n")
    before, version = set(library_modules(script)), code_version(script)
    script.write_text("from behaviorflow.predictors.scenarios import pretrain_predictor\n")
    after = set(library_modules(script))
    assert "behaviorflow.validation.metrics" in before - after
    assert "behaviorflow.predictors.scenarios" in after - before
    assert code_version(script) != version


@pytest.mark.parametrize("script, stage", [("behaviorlm_atune", "behaviorflow.behaviorlm.stages"),
                                           ("behaviorlm_btune", "behaviorflow.behaviorlm.stages"),
                                           ("bua_stage", "behaviorflow.bua.stages")])
def test_a_training_rules_version_covers_the_stage_it_launches(script, stage):
    """The training rules start their stage through the torchrun launcher; their code version still
    covers the stage's module and `lm.tuning` (a change there reruns them); BehaviorLM's never
    covers BUA's stages."""
    modules = set(library_modules(REPO / f"workflow/scripts/{script}.py"))
    assert {stage, "behaviorflow.lm.tuning", "behaviorflow.behaviorlm.launch"} <= modules
    assert script == "bua_stage" or "behaviorflow.bua.stages" not in modules
