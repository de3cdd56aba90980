"""Rule anonymize: pseudonyms, zones, floored timestamps, k-anonymous attributes.

The key is read from the environment inside the library; it is never a param or logged.
"""

from behaviorflow.data.anonymize import anonymize
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
anonymize(events_in=snakemake.input.events, attributes_in=snakemake.input.attributes,
          events_out=snakemake.output.events, profiles_input_out=snakemake.output.profiles_input,
          report_out=snakemake.output.report, settings=snakemake.params.settings,
          dataset_format=snakemake.params.dataset_format, threads=snakemake.threads,
          memory_mb=int(snakemake.resources.mem_mb * 0.75))
