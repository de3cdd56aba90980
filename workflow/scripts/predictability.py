"""Rule predictability: the counting baselines' leaderboard rows and the dataset's structure statistics."""

from behaviorflow.predictors.baselines import predictability
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
predictability(split_path=snakemake.input.split, events_path=snakemake.input.events,
               outputs=dict(snakemake.output.items()), dataset=snakemake.wildcards.dataset,
               slot_minutes=snakemake.params.slot_minutes)
