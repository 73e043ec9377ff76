"""Run every benchmark (each module in its own process, so peak memory is its own).

Usage::

    python -m benchmarks                 # a table: each figure beside its target, MET / MISSED
    python -m benchmarks --check         # the same, exit status 1 when any target is MISSED
    python -m benchmarks --json          # one JSON object per line, for tracking over time
    python -m benchmarks --quick itch    # small inputs, only modules whose name contains "itch"

Each ``benchmarks/bench_*.py`` exposes ``run(quick: bool) -> list[dict]`` returning dicts with
``name``, ``events``, ``seconds``, the row's own target (``target`` and ``target_kind``, see
benchmarks/targets.py) and, where a peer was measured in the same run, ``peer``,
``peer_events`` and ``peer_seconds``. This runner adds ``events_per_s``, ``peak_rss_mb``,
``peer_events_per_s``, ``ratio`` (ours / peer's events per second), ``time_ratio`` (our
seconds / the peer's), ``load_1m`` (the machine's 1-minute load average around the module's
run: wall times on a shared machine are only as good as its share of the cores), ``met``
(true, false, or null when the target is not checked in this run), ``status`` and, unless
met, ``reason``. A benchmark that fails counts as MISSED.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.targets import MET, MISSED, NOT_CHECKED, describe, evaluate

HERE = Path(__file__).resolve().parent

_CHILD = """
import json, sys, importlib
from benchmarks.memory import peak_rss_mb
mod = importlib.import_module(sys.argv[3] + "." + sys.argv[1])
rows = mod.run(quick=sys.argv[2] == "1")
peak = peak_rss_mb()
for r in rows:
    r.setdefault("peak_rss_mb", round(peak, 1))
print("@@BENCH@@" + json.dumps(rows))
"""

#: printed in their own columns, not as trailing key=value
_COLUMNS = {
    "name",
    "events",
    "seconds",
    "events_per_s",
    "peak_rss_mb",
    "peer",
    "peer_events",
    "peer_seconds",
    "peer_events_per_s",
    "ratio",
    "time_ratio",
    "target",
    "target_kind",
    "met",
    "status",
    "reason",
    "unavailable",
    "unchecked",
    "error",
    "load_1m",
}


def discover(filters: list[str], folder: Path = HERE) -> list[str]:
    """The ``bench_*`` modules of ``folder`` whose name contains one of ``filters``."""
    names = sorted(p.stem for p in folder.glob("bench_*.py"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def finish(row: dict[str, Any]) -> dict[str, Any]:
    """Derived figures: rates, ours/peer ratios."""
    out = dict(row)
    secs = out.get("seconds")
    events = out.get("events")
    out["events_per_s"] = round(events / secs, 1) if events and secs else None
    if out.get("peer_seconds"):
        pe = out.get("peer_events", events)
        out["peer_events_per_s"] = round(pe / float(out["peer_seconds"]), 1) if pe else None
        if out["events_per_s"] and out["peer_events_per_s"]:
            out["ratio"] = round(out["events_per_s"] / out["peer_events_per_s"], 3)
        if secs:
            out["time_ratio"] = round(float(secs) / float(out["peer_seconds"]), 3)
    return out


def run_module(name: str, *, quick: bool, folder: Path = HERE) -> list[dict[str, Any]]:
    """Rows of module ``name`` of the package ``folder``, run in a process of its own (a
    single error row if it fails)."""
    env = dict(os.environ)
    # the child imports benchmarks.memory and the package from wherever it was started
    path = [str(HERE.parent), str(folder.parent), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, name, "1" if quick else "0", folder.name],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    load = round(max(load, os.getloadavg()[0]), 2)
    for line in proc.stdout.splitlines():
        if line.startswith("@@BENCH@@"):
            return [finish({**r, "load_1m": load}) for r in json.loads(line[len("@@BENCH@@") :])]
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return [{"name": name, "error": " | ".join(tail) or f"exit status {proc.returncode}"}]


def _fmt_rate(x: float | None) -> str:
    if not x:
        return "-"
    return f"{x / 1e6:.2f} M/s" if x >= 1e5 else f"{x / 1e3:.2f} k/s"


def _num(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


HEADER = (
    f"{'benchmark':56s} {'events':>13s} {'seconds':>9s} {'rate':>12s} {'peak MB':>8s} "
    f"{'target':>20s}  {'status':11s}  peer (rate, ours/peer)"
)


def format_row(row: dict[str, Any]) -> str:
    """One table line (and a second, indented, with the reason when not MET)."""
    peer = ""
    if row.get("peer"):
        peer = f"{row['peer']}: {_fmt_rate(row.get('peer_events_per_s'))}"
        if row.get("target_kind") == "max time ratio":  # judged on seconds, not on rates
            if row.get("time_ratio") is not None:
                peer += f", {row['time_ratio']:.2f} x its time"
        elif row.get("ratio") is not None:
            peer += f", x{row['ratio']:.2f}"
    extra = "".join(f"  {k}={v}" for k, v in row.items() if k not in _COLUMNS)
    line = (
        f"{row['name']:56s} {_num(row.get('events'), ',d'):>13s} "
        f"{_num(row.get('seconds'), '.3f'):>9s} {_fmt_rate(row.get('events_per_s')):>12s} "
        f"{_num(row.get('peak_rss_mb'), '.0f'):>8s} {describe(row):>20s}  "
        f"{row['status']:11s}  {peer}{extra}"
    )
    if row.get("reason"):
        line += f"\n{'':4s}-> {row['reason']}"
    return line


def report(rows: Iterable[dict[str, Any]], *, as_json: bool, check: bool, out: Any = None) -> int:
    """Print finished rows (judged here) and return the exit status.

    Non-zero when a benchmark failed, and under ``check`` when any target was MISSED.
    """
    out = out if out is not None else sys.stdout
    counts = {MET: 0, MISSED: 0, NOT_CHECKED: 0}
    failed = False
    load = 0.0
    if not as_json:
        print(HEADER, file=out, flush=True)
    for raw in rows:
        row = evaluate(raw)
        counts[row["status"]] += 1
        failed = failed or bool(row.get("error"))
        load = max(load, float(row.get("load_1m") or 0.0))
        if as_json:
            print(json.dumps(row), file=out, flush=True)
        else:
            print(format_row(row), file=out, flush=True)
    if not as_json:
        print(
            f"\n{counts[MET]} MET, {counts[MISSED]} MISSED, {counts[NOT_CHECKED]} not checked",
            file=out,
        )
        cores = os.cpu_count() or 1
        if load > cores:
            print(
                f"the machine was busy (1-minute load up to {load:g} on {cores} cores): "
                "wall-time figures are pessimistic; cpu_seconds, where given, is not",
                file=out,
            )
    if failed or (check and counts[MISSED]):
        return 1
    return 0


def main(argv: list[str] | None = None, *, folder: Path = HERE) -> int:
    """``folder``: the package whose ``bench_*`` modules run (tests pass their own)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--quick", action="store_true", help="small inputs (smoke test)")
    ap.add_argument("--check", action="store_true", help="exit status 1 if any target is MISSED")
    ap.add_argument("names", nargs="*", help="only benchmarks whose module name contains these")
    args = ap.parse_args(argv)
    modules = discover(args.names, folder)
    if not modules:
        print(f"no benchmark module matches {' '.join(args.names)!r}", file=sys.stderr)
        return 2
    rows = (row for mod in modules for row in run_module(mod, quick=args.quick, folder=folder))
    return report(rows, as_json=args.json, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
