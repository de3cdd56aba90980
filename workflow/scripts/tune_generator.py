"""Rule tune_generator: LoRA-tune the generator on training users' weeks (prompt -> completion)."""

import pandas as pd

from behaviorflow.generate import training_examples, vocabularies
from behaviorflow.local_lm import TuneSettings, tune_lora
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
lora = dict(snakemake.params.lora)
split = pd.read_parquet(snakemake.input.split)
profiles = pd.read_parquet(snakemake.input.profiles)
zones, behaviors = vocabularies(split, snakemake.params.top_zones)
examples = training_examples(split, profiles, zones, behaviors, snakemake.params.sample_days,
                             lora["max_examples"], lora["seed"])
tune_lora(snakemake.input.model, examples, snakemake.output.adapter, TuneSettings(**lora),
          device=snakemake.params.device, threads=snakemake.threads)
