"""Report notebooks: execute a papermill template with parameters, keep only what the data decide,
render HTML with the figures embedded, and refuse to write anything that holds a secret.

The HTML page is for readers: results only (figures, tables, text), no code cells and no prompts;
the executed `.ipynb` beside it keeps the code.

The executed notebook and its HTML are byte-identical across reruns on the same inputs: papermill's
timestamps and durations are removed, so auditors can checksum reports like tables.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

KERNEL = "python3"
# Environment variables whose names look like credentials are checked too, not only the declared ones.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_MIN_SECRET_LENGTH = 8


class SecretInReport(RuntimeError):
    """A report would contain the value of a secret environment variable."""


def secret_values(declared: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Name -> value of the declared secret variables and of every variable named like a credential."""
    names = set(declared) | {n for n in os.environ if _SECRET_NAME.search(n)}
    return {n: os.environ[n] for n in sorted(names) if len(os.environ.get(n, "")) >= _MIN_SECRET_LENGTH}


def check_no_secrets(texts: dict[str, str], declared: list[str] | tuple[str, ...] = ()) -> None:
    """Raise naming the variable (never its value) and the place when a secret's value occurs in a text."""
    for name, value in secret_values(declared).items():
        for where, text in texts.items():
            if value in text:
                raise SecretInReport(f"{where} contains the value of the environment variable {name}; "
                                     "secrets must never reach notebook parameters or outputs")


def _strip_volatile(nb, template, notebook) -> None:
    """Drop what changes from run to run without the data changing: timestamps, durations, the
    random id papermill gives the injected parameters cell, and the working directory in paths."""
    nb.metadata.papermill.update(start_time=None, end_time=None, duration=None,
                                 input_path=Path(template).name, output_path=Path(notebook).name)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        cell.metadata.pop("execution", None)
        if "papermill" in cell.metadata:
            cell.metadata.papermill.update(start_time=None, end_time=None, duration=None)


def _private_kernel_sockets(directory: str):
    """Kernel configuration that talks over Unix sockets in `directory`, not TCP ports.

    With TCP, jupyter_client picks free ports by binding and releasing them before the kernel
    binds them; two reports starting at once (snakemake --cores 2) can pick the same port and one
    kernel dies with "Address already in use" (nteract/papermill#511). Sockets in a private
    directory cannot collide.
    """
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(directory, "kernel")
    return config


def render_notebook(template, notebook, html, parameters: dict, secret_envs=(), cwd=None) -> None:
    """Execute `template` on the python3 kernel with `parameters`; write the notebook and its HTML.

    Parameters are paths and labels only. A secret found in them or in the outputs stops the
    report before anything is written.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    from behaviorflow.atomic import write_text

    check_no_secrets({"the notebook parameters": repr(parameters)}, secret_envs)
    with tempfile.TemporaryDirectory(prefix="bf-kernel-") as sockets:
        nb = papermill.execute_notebook(str(template), None, parameters=parameters, kernel_name=KERNEL,
                                        progress_bar=False, cwd=str(cwd or Path.cwd()),
                                        config=_private_kernel_sockets(sockets))
    _strip_volatile(nb, template, notebook)
    text = nbformat.writes(nb)
    body, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    check_no_secrets({str(notebook): text, str(html): body}, secret_envs)
    write_text(notebook, text)
    write_text(html, body)


def render_report(inputs: dict, outputs: dict, labels: dict, secret_envs=()) -> None:
    """Execute the template notebook (`inputs['template']`) with the other inputs, the figure outputs
    and the labels (dataset or table) as parameters; write the notebook and its HTML page."""
    parameters = {**labels, "inputs": {k: v for k, v in inputs.items() if k != "template"},
                  "figures": {k: v for k, v in outputs.items() if k not in ("notebook", "html")}}
    render_notebook(inputs["template"], outputs["notebook"], outputs["html"], parameters, secret_envs=secret_envs)


def data_overview_report(*, inputs: dict, outputs: dict, labels: dict, secret_envs=()) -> None:
    """Rule data_overview_report: one dataset's counts, rejects, splits and behaviour shares."""
    render_report(inputs, outputs, labels, secret_envs)


def fidelity_privacy_report(*, inputs: dict, outputs: dict, labels: dict, secret_envs=()) -> None:
    """Rule fidelity_privacy_report: one dataset's fidelity and privacy tables and figures."""
    render_report(inputs, outputs, labels, secret_envs)


def table_report(*, inputs: dict, outputs: dict, labels: dict, secret_envs=()) -> None:
    """Rule table_report: one results table's page, long table and figure."""
    render_report(inputs, outputs, labels, secret_envs)


def embedded_images(html: str) -> int:
    """The number of images embedded in an HTML page (base64 data URIs)."""
    return len(re.findall(r"<img[^>]+src=\"data:image/(?:png|jpeg|svg\+xml);base64,", html))


def code_cells(html: str) -> int:
    """The number of code inputs shown on an HTML page rendered by nbconvert (editor or prompt areas)."""
    return len(re.findall(r"class=\"jp-(?:CodeMirrorEditor|InputPrompt)\b", html))


def check_pages(paths, secret_envs=()) -> list[tuple[str, int, int, str]]:
    """(page, embedded images, code cells shown, secret problem or '') for rendered report pages."""
    rows = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        try:
            check_no_secrets({str(path): text}, secret_envs)
            problem = ""
        except SecretInReport as err:
            problem = str(err)
        rows.append((str(path), embedded_images(text), code_cells(text), problem))
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m behaviorflow.reporting.reports reports/*.html`: figures embedded in each page, no code cell
    shown and no secret of this environment in any; exit 1 when a page has no figure, shows code or holds a
    secret."""
    ap = argparse.ArgumentParser(prog="python -m behaviorflow.reporting.reports", description=main.__doc__.split(":")[0])
    ap.add_argument("pages", nargs="*", help="rendered report pages (default: every reports/*.html rendered "
                    "from a notebook, i.e. with a .ipynb beside it)")
    ap.add_argument("--secret-env", action="append", default=[],
                    help="a secret variable to look for besides those named like credentials (*KEY*, *TOKEN*, ...)")
    args = ap.parse_args(argv)
    pages = args.pages or [str(p.with_suffix(".html")) for p in sorted(Path("reports").glob("*.ipynb"))]
    if not pages:
        print("no rendered report pages in reports/: build them with `snakemake --cores all`", file=sys.stderr)
        return 2
    rows = check_pages(pages, args.secret_env)
    checked = sorted(secret_values(args.secret_env))
    for page, images, code, problem in rows:
        print(f"{page}: {images} embedded figure(s), {code} code cell(s), " + (problem or "no secret"))
    print(f"secrets looked for: {', '.join(checked) if checked else 'none set in this environment'}")
    return 1 if any(images == 0 or code or problem for _, images, code, problem in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
