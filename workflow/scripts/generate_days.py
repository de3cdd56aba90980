"""Rule generate_days: Markov's or BehaviorGen's next day for table 8's test users, and its fidelity rows."""

from behaviorflow.bua.days import generate_days
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
generate_days(split=snakemake.input.split, profiles=snakemake.input.profiles, outputs=dict(snakemake.output.items()),
              dataset=w.dataset, generator=w.generator, seed=int(w.seed), keys=p.days, settings=p.settings,
              slot_minutes=p.slot_minutes, top_zones=p.top_zones, model=snakemake.input.get("model"),
              adapter=snakemake.input.get("adapter"), threads=snakemake.threads)
