"""Rule build_profiles: attributes + behaviour-derived traits + prompt text."""

from behaviorflow.data.profiles import build_profiles
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
build_profiles(split_in=snakemake.input.split, profiles_input_in=snakemake.input.profiles_input,
               profiles_out=snakemake.output.profiles)
