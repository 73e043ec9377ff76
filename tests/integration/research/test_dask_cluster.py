"""A study on a real Dask cluster, as users start one: a ``dask scheduler`` and two ``dask
worker`` processes on 127.0.0.1 (free ports, their own process groups, always killed). The
study through ``scheduler=`` gives exactly the results of the same study run in this
process; with a worker killed (SIGKILL) after the first batch, Dask re-runs its tasks on the
other, no result is lost and every (set, day) is written once; a local cluster
(``workers=2``) gives the same results again."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import research
from framework.engine.config import LatencyConfig, QueueConfig
from research.optimize import OptimizeResult
from tests.procs import dies_with_parent
from tests.unit.research.study_days import write_days

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
DASK = Path(sys.executable).with_name("dask")
DAYS = [dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)]
#: 8 sets x 3 days in batches of 2 sets: 12 tasks, enough for a kill to land mid-study
SPACE = ["max_position=1:4", "improve=false,true"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_days(tmp_path_factory.mktemp("store"), DAYS, seed=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the workers import this tree's research and strategies, as the test does
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process group we started: TERM, a bounded wait, then KILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclasses.dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen[bytes]]
    #: starts one more ``dask worker`` (its name) and returns its process
    add_worker: Callable[[str], subprocess.Popen[bytes]]
    logs: Path


@contextlib.contextmanager
def running_cluster(tmp_path: Path, n_workers: int) -> Iterator[Cluster]:
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes, each in its own
    process group (every one started is stopped at the end)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            p = subprocess.Popen(
                dies_with_parent([str(DASK), *args]),
                env=_env(),
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a whole
            )
        procs.append(p)
        return p

    def add_worker(name: str) -> subprocess.Popen[bytes]:
        worker = ["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1"]
        return start(name, *worker, "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                     "--name", name)

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--no-dashboard", "--dashboard-address", "127.0.0.1:0")  # fmt: skip
        workers = [add_worker(f"w{i}") for i in range(n_workers)]
        deadline = time.monotonic() + 60
        client = None
        while client is None:
            try:
                client = Client(address, timeout=5)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with client:
            client.wait_for_workers(n_workers, timeout=60)
        assert listening_outside_loopback(procs) == []
        yield Cluster(address, workers, add_worker, logs)
    finally:
        for p in reversed(procs):
            _stop(p)


def listening_outside_loopback(procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """Listening sockets of the processes (and their children) not on 127.0.0.1."""
    import psutil

    bad = []
    for p in procs:
        root = psutil.Process(p.pid)
        for proc in [root, *root.children(recursive=True)]:
            bad.extend(
                f"{proc.name()} {proc.pid} on {c.laddr.ip}:{c.laddr.port}"
                for c in proc.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.ip != "127.0.0.1"
            )
    return bad


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """``dask scheduler`` and two ``dask worker`` processes."""
    with running_cluster(tmp_path, 2) as c:
        yield c


def study(store: Path, out: Path, **kw: Any) -> OptimizeResult:
    return research.optimize(
        "one_tick_mm",
        venue="SIM",
        symbol="SYN",
        days=DAYS,
        space=SPACE,
        store=store,
        out=out,
        mode="compiled",
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=QueueConfig(model="power", n=2.0),
        batch_size=2,
        **kw,
    )


def rows(r: OptimizeResult) -> pl.DataFrame:
    """The (set, day) metrics, without how they were batched."""
    return r.results.drop("batch_size", "batch_seconds").sort("key", "day")


@pytest.fixture(scope="module")
def local(store: Path, tmp_path_factory: pytest.TempPathFactory) -> OptimizeResult:
    return study(store, tmp_path_factory.mktemp("inline") / "s", workers=0)


def test_a_study_on_a_running_cluster_equals_the_local_run(
    store: Path, tmp_path: Path, cluster: Cluster, local: OptimizeResult
) -> None:
    r = study(store, tmp_path / "s", scheduler=cluster.address)
    assert r.evaluated == 24
    assert rows(r).equals(rows(local))
    assert r.trials.drop("trial").equals(local.trials.drop("trial"))


def test_a_worker_killed_mid_study_loses_no_result(
    store: Path, tmp_path: Path, cluster: Cluster, local: OptimizeResult
) -> None:
    from distributed import Client

    killed: list[tuple[int, str, int]] = []

    def kill_a_busy_worker(evaluated: int) -> None:
        if killed:
            return
        # after the first batch is in, a worker running a task dies with it (SIGKILL)
        with Client(cluster.address, timeout=5) as c:
            names = {a: w["name"] for a, w in c.scheduler_info()["workers"].items()}
            busy = {names[a]: len(keys) for a, keys in c.processing().items() if keys}
        name = min(busy)
        victim = cluster.workers[int(name[1:])]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        killed.append((evaluated, name, busy[name]))

    r = study(store, tmp_path / "s", scheduler=cluster.address, on_batch=kill_a_busy_worker)
    assert len(killed) == 1
    evaluated, name, tasks = killed[0]
    assert evaluated == 2  # after the first batch of two sets
    assert tasks >= 1  # the killed worker had a task to lose
    assert cluster.workers[int(name[1:])].poll() is not None
    assert r.evaluated == 24  # every (set, day) written once ...
    assert r.results.select("key", "day").is_duplicated().sum() == 0
    assert rows(r).equals(rows(local))  # ... with the values of the undisturbed run


def test_a_local_cluster_of_two_workers_equals_the_local_run(
    store: Path, tmp_path: Path, local: OptimizeResult
) -> None:
    r = study(store, tmp_path / "s", workers=2)
    assert rows(r).equals(rows(local))


def test_a_worker_that_joins_a_running_study_warms_up_before_its_first_task(
    store: Path, tmp_path: Path, local: OptimizeResult
) -> None:
    """One worker starts the study; after its first batch a replacement ``dask worker``
    joins and the first one dies (SIGKILL), so every remaining task -- and those whose
    results died with it -- goes to the newcomer. The newcomer runs the warm-up plugin the
    study registered before it takes any task; the results are the local run's."""
    from distributed import Client

    with running_cluster(tmp_path, 1) as cl:
        with Client(cl.address, timeout=5) as c:
            c.get_task_stream()  # the scheduler records task times from now on
        first = cl.workers[0]

        def replace_the_worker(evaluated: int) -> None:
            if first.poll() is None:
                cl.add_worker("late")
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=10)

        r = study(store, tmp_path / "s", scheduler=cl.address, on_batch=replace_the_worker)
        with Client(cl.address, timeout=5) as c:  # one client at a time in this process
            info = c.scheduler_info()["workers"]
            late = next(a for a, w in info.items() if w["name"] == "late")
            warmed = c.run(
                lambda dask_worker: dask_worker.plugins["hftlab-warm-up"].warmed_at,
                workers=[late],
            )[late]
            starts = [
                ss["start"]
                for t in c.get_task_stream()
                if t["worker"] == late and "evaluate_batch" in str(t["key"])
                for ss in t["startstops"]
                if ss["action"] == "compute"
            ]
    assert warmed is not None
    assert starts, "the late worker took no task"
    assert min(starts) >= warmed  # warm before its first task
    assert "hftlab: numba cache warm" in (cl.logs / "late.log").read_text()
    assert r.evaluated == 24
    assert rows(r).equals(rows(local))
