"""Rule leaderboard_table: every predictor of every dataset on the same queries (results/leaderboard.csv)."""

from behaviorflow.reporting.leaderboard import leaderboard_table
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
datasets = snakemake.params.datasets
leaderboard_table(parts=list(snakemake.input.parts),
                  fingerprints={d: list(snakemake.input[f"fingerprints_{d}"]) for d in datasets},
                  structures={d: snakemake.input[f"structure_{d}"] for d in datasets},
                  outputs=dict(snakemake.output.items()), config=snakemake.params.config,
                  seeds=snakemake.params.seeds, models_from=list(snakemake.input.models),
                  llm_parts=list(snakemake.input.get("llm_parts", [])))
