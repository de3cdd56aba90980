"""Rule generate_synthetic: one generator's synthetic population or personal weeks."""

from behaviorflow.behaviorgen.generate import generate_synthetic
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
generate_synthetic(split=snakemake.input.split, profiles=snakemake.input.profiles,
                   outputs=dict(snakemake.output.items()), generator=snakemake.wildcards.generator,
                   part=snakemake.wildcards.part, settings=snakemake.params.settings,
                   slot_minutes=snakemake.params.slot_minutes, top_zones=snakemake.params.top_zones,
                   model=snakemake.input.get("model"), adapter=snakemake.input.get("adapter"),
                   threads=snakemake.threads)
