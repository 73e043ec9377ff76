"""``make demo``: import the bundled sample data (or generate some) and show what is stored.

With ``../shared/data`` present (the real samples that come with the project's workspace)
this imports a full LOBSTER AMZN day, the LOBSTER AAPL level-10 excerpt, the Binance
USD-M capture, a NASDAQ ITCH 5.0 MoldUDP64 capture and Databento MBO records. It always
generates a synthetic L2 day, so a user with nothing but the repository sees the whole
flow. Until the backtest engine lands, the "main job" ends with ``hftlab data info``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from framework.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HFTLAB_SHARED_DATA", REPO.parent / "shared" / "data"))

#: (what, CLI arguments after `hftlab data import`, stored target for `data info`)
SAMPLES: list[tuple[str, list[str], str]] = [
    (
        "LOBSTER AMZN 2012-06-21, level 1, full day",
        [
            "lobster",
            "lobster_AMZN_2012-06-21_L1_fullday/AMZN_2012-06-21_34200000_57600000_message_1.csv",
        ],
        "XNAS/AMZN/2012-06-21",
    ),
    (
        "LOBSTER AAPL 2012-06-21, level 10, first 999 messages",
        [
            "lobster",
            "lobster_AAPL_2012-06-21_L10_first999/"
            "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv",
        ],
        "XNAS/AAPL/2012-06-21",
    ),
    (
        "Binance USD-M BTCUSDT websocket capture",
        ["binance", "crypto_hftbacktest_binance_raw_feed/binance_usdm_btcusdt_20240808.gz"],
        "BINANCE_USDM/BTCUSDT",
    ),
    (
        "NASDAQ TotalView-ITCH 5.0 over MoldUDP64 (pcap)",
        [
            "itch",
            "--pcap",
            "itch50_moldudp64_pcaps_omi/Nasdaq.Equities.TotalView.Itch.v5.0/Multiple.Packets.pcap",
        ],
        "",
    ),
    (
        "Databento MBO (CME ES futures)",
        ["dbn", "dbn_databento_dbn_tests/tests_data/test_data.mbo.v3.dbn.zst"],
        "",
    ),
]


def _run(args: list[str]) -> int:
    print(f"\n$ hftlab {' '.join(args)}", flush=True)
    return cli(args)


def main() -> int:
    store = os.environ.get("HFTLAB_STORE", str(REPO / "data" / "store"))
    failures = 0
    if SHARED.is_dir():
        print(f"== importing the bundled real samples from {SHARED}")
        for what, args, target in SAMPLES:
            print(f"\n-- {what}")
            fmt, *rest = args
            paths = [str(SHARED / a) if not a.startswith("--") else a for a in rest]
            rc = _run(["data", "import", fmt, *paths, "--store", store])
            failures += rc != 0
            if rc == 0 and target:
                _run(["data", "info", target, "--store", store])
    else:
        print(
            f"== no bundled samples at {SHARED}: running on generated data only.\n"
            "   To use real data, import it, e.g.\n"
            "     hftlab data import lobster AMZN_..._message_1.csv \\\n"
            "         --orderbook AMZN_..._orderbook_1.csv\n"
            "     hftlab data import itch 12302019.NASDAQ_ITCH50.gz\n"
            "     hftlab data import dbn file.dbn.zst   |   hftlab data import binance capture.gz\n"
            "   (or point HFTLAB_SHARED_DATA at a folder laid out like ../shared/data)."
        )
    print("\n== a synthetic L2 day (seeded, with regime labels)")
    failures += (
        _run(
            [
                "data",
                "generate",
                "--symbol",
                "SYN",
                "--venue",
                "SIM",
                "--date",
                "2024-01-02",
                "--events",
                "1000000",
                "--store",
                store,
            ]
        )
        != 0
    )
    _run(["data", "info", "SIM/SYN/2024-01-02", "--store", store])
    _run(["data", "ls", "--store", store])
    _run(
        [
            "data",
            "sql",
            "SELECT venue, symbol, count(*) AS events, "
            "count(DISTINCT date) AS days FROM events GROUP BY ALL ORDER BY events DESC",
            "--store",
            store,
        ]
    )
    print("\n== backtests: one-tick market maker with inventory limits, 1 ms latency each way")
    runs = [("SIM", "SYN", "2024-01-02")]
    if SHARED.is_dir():
        runs.insert(0, ("XNAS", "AMZN", "2012-06-21"))
    reports = []
    for venue, symbol, day in runs:
        out = str(REPO / "reports" / f"demo_one_tick_mm_{venue}_{symbol}_{day}")
        rc = _run(
            [
                "backtest",
                "one_tick_mm",
                "--venue",
                venue,
                "--symbol",
                symbol,
                "--from",
                day,
                "--store",
                store,
                "--out",
                out,
            ]
        )
        failures += rc != 0
        if rc == 0:
            reports.append(f"{out}/report.html")
    if reports:
        print("\nreports:\n  " + "\n  ".join(reports))
    if failures:
        print(f"\n{failures} step(s) failed; see the messages above", file=sys.stderr)
        return 1
    print(f"\nDone. The store is at {store}; explore it with `hftlab data --help`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
