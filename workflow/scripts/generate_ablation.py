"""Rule generate_ablation: one BehaviorGen prompt variant on the ablation's fixed users."""

from behaviorflow.behaviorgen.ablation import generate_ablation
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
generate_ablation(split=snakemake.input.split, profiles=snakemake.input.profiles,
                  outputs=dict(snakemake.output.items()), settings=snakemake.params.settings,
                  ablation=snakemake.params.ablation, variant=snakemake.wildcards.variant,
                  seed=int(snakemake.wildcards.seed), slot_minutes=snakemake.params.slot_minutes,
                  top_zones=snakemake.params.top_zones, model=snakemake.input.get("model"),
                  adapter=snakemake.input.get("adapter"), threads=snakemake.threads)
