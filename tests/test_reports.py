"""Report notebooks: figures on hand-made data, the secret guard, and the rendered reports of the
tiny workflow (figures embedded, python3 kernel, no secret, identical on a rerun)."""

import hashlib
import json
import multiprocessing
import re
import secrets
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, child_env, run_snakemake
from nbformat.v4 import new_code_cell, new_notebook

from behaviorflow.reporting import figures as F
from behaviorflow.reporting.reports import (
    SecretInReport,
    check_no_secrets,
    code_cells,
    embedded_images,
    render_notebook,
)

PAGES = {  # report page -> figures it must embed
    "tiny_data_overview": 2,
    "tiny_fidelity_privacy": 2,
    "table1": 1,
    "table2": 1,
    "table3": 1,
    "table4": 1,
    "table5": 1,
    "table6": 1,
    "table7": 1,
    "table8": 1,
    "table9": 1,
    "leaderboard": 1,
}


def _events(behaviours, user="u1", weekday=0, slot=480):
    return pd.DataFrame({"user_id": user, "source_user": user, "weekday": weekday, "slot": slot,
                         "behavior": behaviours})


def test_behaviour_shares_mark_head_medium_tail_by_training_share():
    # training shares: a 90 %, b 4 %, c 0.5 % (and 5.5 % of d): head, medium, tail, head
    train = _events(["a"] * 180 + ["b"] * 8 + ["c"] * 1 + ["d"] * 11)
    events = _events(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    shares = F.behaviour_shares(events, train)
    assert shares["behavior"].tolist() == ["a", "b", "c"]  # most frequent first; d never occurs
    assert shares["group"].tolist() == ["head", "medium", "tail"]
    assert shares["share"].tolist() == pytest.approx([0.5, 0.3, 0.2])
    fig = F.plot_behaviour_shares(shares)
    bars = fig.axes[0].patches
    assert [b.get_height() for b in bars] == pytest.approx([0.5, 0.3, 0.2])
    assert bars[0].get_facecolor() != bars[1].get_facecolor() != bars[2].get_facecolor()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "head (1 behaviours)", "medium (1 behaviours)", "tail (1 behaviours)"]


def test_user_distribution_figure_compares_each_users_real_and_synthetic_shares():
    real = pd.concat([_events(["x"] * 3 + ["y"], "u1"), _events(["y"] * 2, "u2")])
    synthetic = {"gen": pd.concat([_events(["x", "y"], "u1"), _events(["x"] * 4, "u2")])}
    fig = F.plot_user_distributions(real, synthetic, ["u1", "u2"])
    first, second = (ax for ax in fig.axes if ax.get_visible())
    assert [b.get_height() for b in first.patches] == pytest.approx([0.75, 0.25, 0.5, 0.5])  # real x, y; gen x, y
    assert [b.get_height() for b in second.patches] == pytest.approx([1.0, 0.0])  # u2: real y; gen has no y


def test_table_figures_draw_absolute_values_with_the_difference_in_points():
    real = {"acc1": 0.30, "acc3": 0.50, "overall": 0.05, "head": 0.40, "medium": 0.10, "tail": np.nan}
    rows = []
    for m in ("sasrec", "bert4rec"):
        for k, v in real.items():
            n = 0 if np.isnan(v) else 2
            rows.append({"dataset": "d", "model": m, "generator": "none", "setting": "real", "metric": k,
                         "mean": v, "sd": 0.01, "n": n})
            for g, delta in (("markov", 0.01), ("behaviorgen", -0.02)):
                rows += [{"dataset": "d", "model": m, "generator": g, "setting": "real+synthetic", "metric": k,
                          "mean": v + delta, "sd": 0.01, "n": n},
                         {"dataset": "d", "model": m, "generator": g, "setting": "diff_pts", "metric": k,
                          "mean": delta * 100, "sd": 0.5, "n": n},
                         {"dataset": "d", "model": m, "generator": g, "setting": "improvement_pct", "metric": k,
                          "mean": delta / v * 100, "sd": 50.0, "n": n}]
    fig = F.plot_predictor_table(pd.DataFrame(rows), "table3")
    assert len(fig.axes) == 2
    heights = [b.get_height() for b in fig.axes[0].patches]
    # five defined metrics (tail has no value on any seed): real, then generators sorted (behaviorgen, markov)
    assert heights == pytest.approx([0.30, 0.50, 0.05, 0.40, 0.10] + [0.28, 0.48, 0.03, 0.38, 0.08]
                                    + [0.31, 0.51, 0.06, 0.41, 0.11])
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["-2.0"] * 5 + ["+1.0"] * 5  # the difference in points over each generator's bar
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["acc1", "acc3", "overall", "head", "medium"]
    # the page lists no row without a value, and its verdict gives points beside per cent
    from behaviorflow.reporting.scenario_tables import markdown

    page = markdown("table3", pd.DataFrame(rows), [1, 2])
    assert "| tail |" not in page and "| acc1 |" in page
    assert "behaviorgen: synthetic data hurts Acc@1 (-2.00 points ± 0.50, -6.67 % ± 50.00)" in page
    ablation = pd.DataFrame({"dataset": "d", "variant": ["full", "no_profile"], "jsd": [0.1, 0.3],
                             "jsd_sd": np.nan, "ks_p": [0.2, 0.05], "ks_p_sd": np.nan})
    fig = F.plot_ablation(ablation)
    assert [b.get_height() for b in fig.axes[0].patches] == pytest.approx([0.1, 0.3])
    assert fig.axes[1].get_yscale() == "log"


def test_a_secret_in_parameters_or_outputs_stops_the_report(tmp_path, monkeypatch):
    value = secrets.token_hex(16)
    monkeypatch.setenv("BEHAVIORFLOW_PSEUDONYM_KEY", value)
    with pytest.raises(SecretInReport, match="BEHAVIORFLOW_PSEUDONYM_KEY") as err:
        check_no_secrets({"params": f"key={value}"}, ["BEHAVIORFLOW_PSEUDONYM_KEY"])
    assert value not in str(err.value)
    check_no_secrets({"params": "nothing here"}, ["BEHAVIORFLOW_PSEUDONYM_KEY"])
    # an undeclared variable named like a credential is guarded too
    token = "tok-" + secrets.token_hex(8)
    monkeypatch.setenv("SOME_API_TOKEN", token)
    with pytest.raises(SecretInReport, match="SOME_API_TOKEN"):
        check_no_secrets({"out": "x " + token})
    # a notebook that prints a secret is refused and writes nothing
    template = tmp_path / "leaky.ipynb"
    book = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                               new_code_cell("import os\nprint(os.environ['BEHAVIORFLOW_PSEUDONYM_KEY'])")],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(book, template)
    with pytest.raises(SecretInReport, match="BEHAVIORFLOW_PSEUDONYM_KEY"):
        render_notebook(template, tmp_path / "out.ipynb", tmp_path / "out.html", {"x": 2})
    assert not (tmp_path / "out.ipynb").exists() and not (tmp_path / "out.html").exists()


def _render_transport(work: Path, i: int) -> str:
    render_notebook(work / "transport.ipynb", work / f"out{i}.ipynb", work / f"out{i}.html", {"x": i})
    return (work / f"out{i}.html").read_text()


def test_reports_started_together_each_get_their_own_kernel_sockets(tmp_path):
    # TCP ports picked by bind-and-release collide when reports start at once (CI died on
    # "Address already in use"); kernels talk over Unix sockets in a private directory instead
    template = tmp_path / "transport.ipynb"
    book = new_notebook(cells=[new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
                               new_code_cell("from ipykernel.connect import get_connection_info\n"
                                             "print('transport', get_connection_info(unpack=True)['transport'], x)")],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(book, template)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        pages = list(pool.map(_render_transport, [tmp_path] * 4, range(4)))
    for i, page in enumerate(pages):
        assert f"transport ipc {i}" in page


def test_notebook_templates_pin_the_python3_kernel_and_have_a_parameters_cell():
    for path in sorted((REPO / "workflow/notebooks").glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        assert book.metadata.kernelspec.name == "python3", path
        tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "inputs = {}" in tagged[0].source, path


def _report_files(work):
    return {p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((work / "reports").rglob("*")) if p.is_file()}


@pytest.mark.workflow
def test_reports_embed_their_figures_hold_no_secret_and_rerun_identically(tiny_run):
    before = _report_files(tiny_run)
    for page, n_figures in PAGES.items():
        html = (tiny_run / f"reports/{page}.html").read_text()
        assert embedded_images(html) == n_figures, page
        assert code_cells(html) == 0 and "import pandas" not in html, page  # results for readers, not code
        book_code = [c for c in nbformat.read(tiny_run / f"reports/{page}.ipynb", as_version=4).cells
                     if c.cell_type == "code"]
        assert any("import" in c.source for c in book_code), page  # the notebook keeps the code
        assert "Traceback" not in html and "An Exception was encountered" not in html
        book = json.loads((tiny_run / f"reports/{page}.ipynb").read_text())
        assert book["metadata"]["kernelspec"]["name"] == "python3"
        assert book["metadata"]["papermill"]["start_time"] is None  # no timestamps: reruns are identical
    assert (tiny_run / "reports/figures/tiny_user_distributions.png").read_bytes()[:4] == b"\x89PNG"
    # rerun every report with secrets in the environment: none reaches a report, and nothing changes
    env = {"BEHAVIORFLOW_PSEUDONYM_KEY": secrets.token_hex(32), "OPENAI_API_KEY": "sk-" + secrets.token_hex(20)}
    run_snakemake(tiny_run, "--forcerun", "data_overview_report", "fidelity_privacy_report", "table_report",
                  env=env)
    after = _report_files(tiny_run)
    assert after == before
    for path in after:
        data = (tiny_run / path).read_bytes()
        assert all(v.encode() not in data for v in env.values()), path
    # the same check from the command line, as the README gives it
    proc = subprocess.run([sys.executable, "-m", "behaviorflow.reporting.reports"], cwd=tiny_run, capture_output=True,
                          text=True, env=child_env(env))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reports/tiny_fidelity_privacy.html: 2 embedded figure(s), 0 code cell(s), no secret" in proc.stdout
    looked_for = re.search(r"secrets looked for: (.*)", proc.stdout).group(1).split(", ")
    assert {"BEHAVIORFLOW_PSEUDONYM_KEY", "OPENAI_API_KEY"} <= set(looked_for)


@pytest.mark.workflow
def test_snakemake_report_holds_the_tables_and_figures_with_captions(tiny_run, tmp_path):
    # outside the run's reports/, which other tests compare file by file
    run_snakemake(tiny_run, "--report", str(tmp_path / "workflow_report.html"))
    page = (tmp_path / "workflow_report.html").read_text()
    for name in ("results/table1.csv", "results/table3.csv", "results/table4.csv", "results/tiny/fidelity.csv",
                 "results/tiny/privacy.csv", "reports/figures/tiny_behaviour_shares.png",
                 "reports/figures/tiny_user_distributions.png", "reports/figures/table2.png"):
        assert name in page, name
    assert "BehaviorGen's Figure 2 idea on dataset" in page  # a caption, with its wildcard filled in
    assert "Fidelity and privacy" in page and "Tables" in page  # the categories


def test_a_verdict_line_never_calls_a_gap_between_spreadless_rows_beyond_the_sd():
    """Two rows whose seeds all agree (sd 0 on both sides) differ by a fixed amount: the verdict
    says there is no spread to judge by, not that the gap is beyond twice the sd; a real spread is
    judged as before."""
    import pandas as pd

    from behaviorflow.reporting.llm_tables import compare

    def summary(rows):
        return pd.DataFrame([{"dataset": "d", "metric": "tail", "model": m, "mean": mean, "sd": sd}
                             for m, mean, sd in rows])

    flat = compare(summary([("a", 0.026, 0.0), ("b", 0.0, 0.0)]), "d", "a", "b", "tail")
    assert "no spread to judge it by" in flat and "beyond" not in flat
    spread = compare(summary([("a", 0.30, 0.01), ("b", 0.20, 0.02)]), "d", "a", "b", "tail")
    assert "beyond twice the larger seed sd (2.0)" in spread
    close = compare(summary([("a", 0.21, 0.05), ("b", 0.20, 0.0)]), "d", "a", "b", "tail")
    assert "within twice the larger seed sd (5.0)" in close
    same = compare(summary([("a", 0.0, 0.0), ("b", 0.0, 0.0)]), "d", "a", "b", "tail")
    assert "within twice the larger seed sd (0.0)" in same
