"""Rule simulate_raw_logs: write the SIMULATED raw phone log and account table."""

from behaviorflow.data.simulate import simulate_raw_logs
from behaviorflow.runlog import log_to

log_to(snakemake.log[0])
simulate_raw_logs(settings=snakemake.params.settings, log_path=snakemake.output.log,
                  accounts_path=snakemake.output.accounts)
