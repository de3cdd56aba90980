"""Rule build_profiles: attributes + behaviour-derived traits + prompt text."""

from behaviorflow.profiles import build_profiles
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
build_profiles(snakemake.input.split, snakemake.input.profiles_input, snakemake.output.profiles)
