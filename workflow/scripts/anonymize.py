"""Rule anonymize: pseudonyms, zones, floored timestamps, k-anonymous attributes.

The key is read from the environment inside the library; it is never a param or logged.
"""

from behaviorflow.anonymize import anonymize_dataset
from behaviorflow.config import AnonymizationSettings
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
settings = dict(snakemake.params.settings)
settings["quasi_identifiers"] = tuple(settings["quasi_identifiers"])
anonymize_dataset(
    snakemake.input.events,
    snakemake.input.attributes,
    snakemake.output.events,
    snakemake.output.profiles_input,
    snakemake.output.report,
    AnonymizationSettings(**settings),
    dataset_format=snakemake.params.dataset_format,
    threads=snakemake.threads,
    memory_mb=int(snakemake.resources.mem_mb * 0.75),
)
