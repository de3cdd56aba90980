"""Rule llm_table: table 5 (LLM prediction and BehaviorLM), table 6 (its ablation and few-shot curve),
table 7 (BUA beside them) or table 9 (BUA's ablation, with its one-day generation columns)."""

from behaviorflow.reporting.llm_tables import llm_table
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
llm_table(snakemake.wildcards.table, parts=list(snakemake.input.parts), outputs=dict(snakemake.output.items()),
          config=snakemake.params.config, seeds=snakemake.params.seeds,
          selections=list(snakemake.input.get("selections", [])), days=list(snakemake.input.get("days", [])))
