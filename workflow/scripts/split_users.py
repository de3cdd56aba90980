"""Rule split_users: train/val/test users and support/query parts."""

from behaviorflow.config import SplitSettings
from behaviorflow.runlog import log_to
from behaviorflow.splits import split_events

log_to(snakemake.log[0])
split_events(
    snakemake.input.events,
    snakemake.output.split,
    snakemake.output.report,
    SplitSettings(**snakemake.params.settings),
)
