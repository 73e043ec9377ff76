"""Run every benchmark (each module in its own process, so peak memory is its own).

Usage::

    python -m benchmarks                 # a table
    python -m benchmarks --json          # one JSON object per line, for tracking over time
    python -m benchmarks --quick itch    # small inputs, only modules whose name contains "itch"

Each ``benchmarks/bench_*.py`` exposes ``run(quick: bool) -> list[dict]`` returning dicts with
``name``, ``events``, ``seconds`` and, where a peer was measured in the same run, ``peer``,
``peer_events`` and ``peer_seconds``. This runner adds ``events_per_s``, ``peak_rss_mb``,
``peer_events_per_s`` and ``ratio`` (ours / peer's events per second).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_CHILD = """
import json, sys, importlib
from benchmarks.memory import peak_rss_mb
mod = importlib.import_module("benchmarks." + sys.argv[1])
rows = mod.run(quick=sys.argv[2] == "1")
peak = peak_rss_mb()
for r in rows:
    r.setdefault("peak_rss_mb", round(peak, 1))
print("@@BENCH@@" + json.dumps(rows))
"""


def discover(filters: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def finish(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    secs = float(out["seconds"])
    out["events_per_s"] = round(out["events"] / secs, 1) if secs > 0 else None
    if out.get("peer_seconds"):
        pe = out.get("peer_events", out["events"])
        out["peer_events_per_s"] = round(pe / float(out["peer_seconds"]), 1)
        if out["events_per_s"]:
            out["ratio"] = round(out["events_per_s"] / out["peer_events_per_s"], 3)
    return out


def run_module(name: str, *, quick: bool) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(HERE.parent / ".numba_cache"))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, name, "1" if quick else "0"],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@BENCH@@"):
            return [finish(r) for r in json.loads(line[len("@@BENCH@@") :])]
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return [{"name": name, "error": " | ".join(tail) or f"exit status {proc.returncode}"}]


def _fmt_rate(x: float | None) -> str:
    return "-" if not x else f"{x / 1e6:10.2f} M/s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--quick", action="store_true", help="small inputs (smoke test)")
    ap.add_argument("names", nargs="*", help="only benchmarks whose module name contains these")
    args = ap.parse_args(argv)
    failed = False
    if not args.json:
        print(
            f"{'benchmark':42s} {'events':>12s} {'seconds':>9s} {'rate':>14s} {'peak MB':>8s}"
            f"  peer (rate, ours/peer)"
        )
    for mod in discover(args.names):
        for row in run_module(mod, quick=args.quick):
            if "error" in row:
                failed = True
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            if "error" in row:
                print(f"{row['name']:42s} FAILED: {row['error']}")
                continue
            peer = ""
            if row.get("peer"):
                peer = (
                    f"  {row['peer']}: {_fmt_rate(row.get('peer_events_per_s')).strip()}, "
                    f"x{row.get('ratio', 0):.2f}"
                )
            extra = "".join(
                f"  {k}={v}"
                for k, v in row.items()
                if k
                not in {
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
                }
            )
            print(
                f"{row['name']:42s} {row['events']:12,d} {row['seconds']:9.3f} "
                f"{_fmt_rate(row['events_per_s']):>14s} {row['peak_rss_mb']:8.0f}{peer}{extra}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
