"""Rule generation_table: table 8 (one-day generation: BUA, BehaviorGen, Markov)."""

from behaviorflow.reporting.generation_table import generation_table
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
generation_table(parts=list(snakemake.input.parts), outputs=dict(snakemake.output.items()),
                 config=snakemake.params.config, seeds=snakemake.params.seeds)
