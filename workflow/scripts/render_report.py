"""Report rules: execute one papermill notebook with paths and labels (never secrets) as parameters."""

from behaviorflow.reports import render_notebook
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
outputs = dict(snakemake.output.items())
parameters = {
    **dict(snakemake.params.labels),
    "inputs": {k: v for k, v in snakemake.input.items() if k != "template"},
    "figures": {k: v for k, v in outputs.items() if k not in ("notebook", "html")},
}
render_notebook(snakemake.input.template, outputs["notebook"], outputs["html"], parameters,
                secret_envs=snakemake.params.secret_envs)
