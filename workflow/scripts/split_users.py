"""Rule split_users: train/val/test users and support/query parts."""

from behaviorflow.data.splits import split_users
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
split_users(events_in=snakemake.input.events, split_out=snakemake.output.split,
            report_out=snakemake.output.report, settings=snakemake.params.settings)
