"""Rule simulate_raw_logs: write the SIMULATED raw phone log and account table."""

from behaviorflow.config import SimulationSettings
from behaviorflow.runlog import log_to
from behaviorflow.simulate import simulate_raw_logs

log_to(snakemake.log[0])
simulate_raw_logs(
    SimulationSettings(**snakemake.params.settings),
    snakemake.output.log,
    snakemake.output.accounts,
)
