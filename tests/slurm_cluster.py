"""A real single-node SLURM cluster for the profile test: munge + slurmctld + slurmd as root, one
node named `hostname -s` with one GPU gres per core (up to 5) backed by /dev/null, /dev/zero, ...,
accounting off. Started and stopped by pid; nothing else on the machine is touched, and a
slurm.conf this module did not write is never overwritten.

slurm.conf must live at /etc/slurm/slurm.conf: SLURM_CONF would work for the daemons and sbatch,
but the job step (srun inside the job) strips it and falls back to the default path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import stop_process

ETC = Path("/etc/slurm")
GPU_FILES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
MARKER = "# Written by behaviorflow's SLURM test (tests/slurm_cluster.py); removed when it ends."
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo")
PORTS = (6817, 6818)  # slurmctld, slurmd


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name)
                                       if p.is_file()), None)


def missing_binaries() -> list[str]:
    return [b for b in DAEMONS + CLIENTS if _binary(b) is None]


def install() -> None:
    """apt-get install slurm-wlm and munge (root only); raises with the command to run otherwise."""
    if os.geteuid() != 0:
        raise RuntimeError("the SLURM test needs slurm-wlm and munge: run `apt-get install slurm-wlm munge` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"],
                   check=True, env=env, timeout=900)


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(node: str, state: Path, cpus: int, gpus: int, memory_mb: int, munge_socket: Path) -> str:
    """slurm.conf of the test cluster. MinJobAge keeps finished jobs visible to squeue (the
    profile's status command) and to the test's scontrol check afterwards."""
    return f"""{MARKER}
ClusterName=behaviorflow-test
SlurmctldHost={node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """Start with `start()`, stop with `stop()` (SIGTERM to each daemon's pid, then SIGKILL)."""

    def __init__(self, state: Path):
        self.state = Path(state)
        self.procs: dict[str, subprocess.Popen] = {}
        self.written: list[Path] = []

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.state / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen([_binary(name), *args], stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout: float = 90) -> None:
        for path in (ETC / "slurm.conf", ETC / "gres.conf"):
            if path.exists() and MARKER not in path.read_text():
                raise RuntimeError(f"{path} exists and was not written by this test: refusing to replace a real "
                                   "cluster's configuration; run the SLURM test on a machine without one")
        busy = [p for p in PORTS if _port_in_use(p)]
        if busy:
            raise RuntimeError(f"ports {busy} are in use (a SLURM daemon is running?): stop it first")
        node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
        for sub in ("ctld", "slurmd"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        key = Path("/etc/munge/munge.key")
        if not key.is_file():
            key = self.state / "munge.key"
            key.write_bytes(os.urandom(1024))
            key.chmod(0o600)
        socket_path = self.state / "munge.socket"
        ETC.mkdir(parents=True, exist_ok=True)
        cpus = os.cpu_count() or 1
        gpus = GPU_FILES[:cpus]
        conf = slurm_conf(node, self.state, cpus, len(gpus), int(_memory_mb() * 0.8), socket_path)
        # one GPU per core, each backed by a character device that is always there (slurmd counts a
        # GPU only with a File): the model jobs run side by side, as the local run's do
        gres = "".join(f"NodeName={node} Name=gpu File={dev}\n" for dev in gpus)
        for name, text in (("slurm.conf", conf), ("gres.conf", f"{MARKER}\n{gres}")):
            (ETC / name).write_text(text)
            self.written.append(ETC / name)
        self._spawn("munged", ["--foreground", "--force", f"--socket={socket_path}", f"--key-file={key}",
                               f"--pid-file={self.state}/munged.pid", f"--seed-file={self.state}/munged.seed",
                               f"--log-file={self.state}/munged.log"])
        self._wait(lambda: socket_path.exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", ["-D"])
        self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), timeout, "slurmctld did not answer")
        self._spawn("slurmd", ["-D"])
        self._wait(lambda: self._ok(["sinfo", "-h", "-o", "%T"], "idle"), timeout, "the node did not become idle")

    def _ok(self, cmd: list[str], expect: str) -> bool:
        proc = subprocess.run([_binary(cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=20)
        return proc.returncode == 0 and expect in proc.stdout

    def _wait(self, ready, timeout: float, message: str) -> None:
        deadline = time.time() + timeout
        while not ready():
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead or time.time() > deadline:
                raise RuntimeError(f"{message} (exited: {dead}):\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.state.glob("*.out")) + sorted(
            self.state.glob("*.log")))

    def stop(self) -> dict[str, int]:
        """Stop the daemons by pid (slurmd, slurmctld, munged); their exit codes."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                stop_process(proc, timeout=30)
        for path in self.written:
            path.unlink(missing_ok=True)
        return {name: proc.returncode for name, proc in self.procs.items()}


def job_records(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """`scontrol show job -o` of each job as key -> value."""
    out = {}
    for job in job_ids:
        text = subprocess.run([_binary("scontrol"), "show", "job", "-o", job], capture_output=True, text=True,
                              timeout=20).stdout
        out[job] = dict(field.split("=", 1) for field in text.split() if "=" in field)
    return out
