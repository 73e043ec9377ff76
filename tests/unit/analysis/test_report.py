"""The HTML report and the BacktestResult Parquet round trip, on small hand-made results."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from framework.analysis import TOTAL, BacktestResult, empty_table, tick_sizes, write_report
from framework.analysis.report import MAX_LINE_POINTS, downsample_minmax, fmt, render_html
from framework.core.errors import DataError
from tests.unit.analysis.fixtures import INST, T0, S, three_fills

SECTIONS = (
    "Summary",
    "Configuration",
    "Equity",
    "Drawdown",
    "Position",
    "Fills on price",
    "Spread",
    "Latency",
    "Denials",
)


def small_result(*, tick_size: float | None = 0.01) -> BacktestResult:
    """One strategy, three fills, five equity points, market, latency and denials."""
    fills = three_fills()
    ts = [T0 + k * 60 * S for k in range(5)]
    eq = [0.0, 2.0, 1.0, 3.0, 1234.56]
    equity = pl.DataFrame(
        {
            "ts": ts * 2,
            "strategy": ["mm"] * 5 + [TOTAL] * 5,
            "equity": eq * 2,
            "cash": eq * 2,
            "fees": [0.0, -0.02, 0.06, 0.06, 0.06] * 2,
            "position_value": [0.0] * 10,
        }
    )
    positions = pl.DataFrame(
        {
            "ts": ts,
            "strategy": ["mm"] * 5,
            "instrument": [INST] * 5,
            "position": [0.0, 2.0, -1.0, 0.0, 0.0],
            "mid": [100.0, 100.5, 101.5, 102.0, 102.0],
        }
    )
    market = pl.DataFrame(
        {
            "ts": ts,
            "instrument": [INST] * 5,
            "bid": [99.99, 100.49, 101.49, 101.98, 101.99],
            "ask": [100.01, 100.51, 101.51, 102.02, 102.01],
        }
    )
    latency = pl.DataFrame(
        {
            "kind": ["entry"] * 3 + ["response"] * 3 + ["round_trip"] * 3,
            "ns": [10_000, 12_000, 5_000_000, 20_000, 21_000, 22_000, 30_000, 33_000, 5_020_000],
            "count": [1] * 9,
        }
    )
    denials = pl.DataFrame(
        {
            "ts": [T0 + 20 * S, T0 + 30 * S],
            "strategy": ["mm", "mm"],
            "instrument": [INST, INST],
            "side": [1, -1],
            "price": [100.0, 90.0],
            "qty": [5.0, 1.0],
            "reason": ["max_position", "price_collar"],
        }
    )
    orders = pl.DataFrame(
        {
            "order_id": [1, 2, 3],
            "strategy": ["mm"] * 3,
            "instrument": [INST] * 3,
            "side": [1, -1, 1],
            "order_type": ["limit", "market", "limit"],
            "tif": ["gtc", "ioc", "post_only"],
            "price": [100.0, math.nan, 102.0],
            "qty": [2.0, 3.0, 1.0],
            "submit_ts": [T0 + S, T0 + 69 * S, T0 + 100 * S],
            "status": ["filled"] * 3,
            "filled_qty": [2.0, 3.0, 1.0],
            "avg_price": [100.0, 101.0, 102.0],
            "reason": ["", "", ""],
        }
    )
    config: dict = {"strategy": {"name": "mm_one_tick", "half_spread_ticks": 1}}
    if tick_size is not None:
        config["tick_sizes"] = {INST: tick_size}
    return BacktestResult(
        orders=orders,
        fills=fills,
        equity=equity,
        positions=positions,
        denials=denials,
        market=market,
        latency=latency,
        events=123_456,
        wall_seconds=0.25,
        start_ts=T0,
        end_ts=T0 + 240 * S,
        config=config,
    )


def _imgs(text: str) -> int:
    return text.count("<img")


# --- report ------------------------------------------------------------------------------
def test_report_has_every_section_and_one_figure_per_plot(tmp_path: Path) -> None:
    path = write_report(small_result(), tmp_path / "out", title="MM <test>")
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text, title
    # equity, drawdown, position, fills on price (one instrument), spread, latency, denials
    assert _imgs(text) == 7
    assert "<title>MM &lt;test&gt;</title>" in text


def test_report_is_self_contained(tmp_path: Path) -> None:
    text = write_report(small_result(), tmp_path).read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 7
    assert all(s.startswith("data:image/png;base64,iVBOR") for s in srcs)  # PNG magic
    assert "<link" not in text
    assert "<script" not in text
    assert "http://" not in text
    assert "https://" not in text


def test_report_shows_summary_numbers_formatted(tmp_path: Path) -> None:
    text = write_report(small_result(), tmp_path).read_text(encoding="utf-8")
    assert "<tr><th>statistic</th><th>mm</th><th>TOTAL</th></tr>" in text
    assert "<td>P&amp;L (net)</td><td>1,234.56</td><td>1,234.56</td>" in text
    assert "<td>P&amp;L (gross, before fees)</td><td>1,234.62</td>" in text
    assert "<td>Fees</td><td>0.06</td>" in text
    assert "<td>Turnover (notional)</td><td>605.00</td>" in text
    assert "<td>Maker share (count)</td><td>66.7%</td>" in text
    assert "<td>Hit ratio (round trips)</td><td>50.0%</td>" in text
    assert "<td>Events replayed</td><td>123,456</td>" in text
    assert "<td>Events / s</td><td>493,824</td>" in text
    assert "<td>denied max_position</td><td>1</td>" in text
    assert "<td>max |position| XNAS/AAPL</td><td>2</td>" in text


def test_report_config_table_flattens_nested_settings(tmp_path: Path) -> None:
    text = write_report(small_result(), tmp_path).read_text(encoding="utf-8")
    assert "<td>strategy.name</td><td><code>mm_one_tick</code></td>" in text
    assert "<td>strategy.half_spread_ticks</td><td><code>1</code></td>" in text


def test_spread_is_in_ticks_when_config_has_tick_sizes_else_price_units() -> None:
    assert "Spread in ticks." in render_html(small_result())
    assert "Spread in price units." in render_html(small_result(tick_size=None))


def test_tick_sizes_read_from_instrument_dicts_or_mapping() -> None:
    cfg = {"instruments": [{"venue": "XNAS", "symbol": "AAPL", "tick_size": "0.01"}]}
    assert tick_sizes(cfg) == {INST: 0.01}
    assert tick_sizes({"instruments": {"B/X": {"tick_size": 0.5}}}) == {"B/X": 0.5}
    assert tick_sizes({"tick_sizes": {"B/X": "bad", "B/Y": -1, "B/Z": 0.1}}) == {"B/Z": 0.1}
    assert tick_sizes({}) == {}


def test_empty_result_gives_a_report_that_says_nothing_traded(tmp_path: Path) -> None:
    text = write_report(BacktestResult(), tmp_path).read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text, title
    assert _imgs(text) == 0
    assert "No fills: the strategy never traded in this run." in text
    assert "No orders were denied by risk checks." in text
    assert "No order latencies were recorded." in text


def test_strategy_with_equity_but_no_fills_is_reported_as_never_traded(tmp_path: Path) -> None:
    r = small_result()
    flat = r.equity.filter(pl.col("strategy") == "mm").with_columns(
        pl.lit("idle").alias("strategy"), pl.lit(0.0).alias("equity")
    )
    r2 = BacktestResult(
        fills=r.fills, equity=pl.concat([r.equity, flat]), market=r.market, events=1
    )
    text = write_report(r2, tmp_path).read_text(encoding="utf-8")
    assert "Never traded (no fills): idle." in text
    assert "<tr><th>statistic</th><th>idle</th><th>mm</th><th>TOTAL</th></tr>" in text


def test_two_strategies_two_instruments_and_one_sided_quotes_do_not_break_it(
    tmp_path: Path,
) -> None:
    r = small_result()
    other = "XNAS/MSFT"
    fills_b = r.fills.with_columns(pl.lit("b").alias("strategy"), pl.lit(other).alias("instrument"))
    pos_b = r.positions.with_columns(
        pl.lit("b").alias("strategy"), pl.lit(other).alias("instrument")
    )
    eq_b = r.equity.filter(pl.col("strategy") == "mm").with_columns(pl.lit("b").alias("strategy"))
    mkt_b = r.market.with_columns(
        pl.lit(other).alias("instrument"), pl.Series("bid", [math.nan, 1.0, 1.0, math.nan, 1.0])
    )
    same = pl.DataFrame({"kind": ["entry"], "ns": [7_000], "count": [3]})  # zero range
    r2 = BacktestResult(
        fills=pl.concat([r.fills, fills_b]),
        positions=pl.concat([r.positions, pos_b]),
        equity=pl.concat([r.equity, eq_b]),
        market=pl.concat([r.market, mkt_b]),
        latency=same,
        config=r.config,  # tick size for AAPL only: spread falls back to price units
    )
    text = write_report(r2, tmp_path).read_text(encoding="utf-8")
    # equity, drawdown, position, fills on price x 2, spread, latency (no denials)
    assert _imgs(text) == 7
    assert "Spread in price units." in text
    assert "<tr><th>statistic</th><th>b</th><th>mm</th><th>TOTAL</th></tr>" in text


def test_fmt_marks_missing_values_with_a_dash() -> None:
    assert fmt(math.nan, "money") == "—"
    assert fmt(None) == "—"
    assert fmt(-1234.5, "money") == "-1,234.50"
    assert fmt(0.6667, "pct") == "66.7%"


def test_downsample_keeps_extremes_and_bounds_points() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=100_003)
    y[31_337] = 50.0
    y[77_777] = -50.0
    x = np.arange(y.size)
    xs, ys = downsample_minmax(x, y)
    assert ys.size <= MAX_LINE_POINTS
    assert ys.max() == 50.0
    assert ys.min() == -50.0
    assert xs[-1] == y.size - 1
    assert np.all(np.diff(xs) > 0)
    assert np.array_equal(y[xs], ys)
    _, short_y = downsample_minmax(x[:10], y[:10])
    assert short_y.tolist() == y[:10].tolist()


def _big_result(n: int = 100_000) -> BacktestResult:
    rng = np.random.default_rng(7)
    ts = T0 + np.sort(rng.integers(0, 6 * 3600 * S, n))
    side = rng.choice(np.array([1, -1], dtype=np.int8), n)
    qty = rng.integers(1, 5, n).astype(np.float64)
    price = 100.0 + np.round(np.cumsum(rng.normal(0, 0.01, n)), 2)
    fills = pl.DataFrame(
        {
            "ts": ts,
            "exch_ts": ts - 1000,
            "strategy": "mm",
            "instrument": INST,
            "order_id": np.arange(n, dtype=np.uint64),
            "side": side,
            "price": price,
            "qty": qty,
            "liquidity": rng.choice(["maker", "taker"], n),
            "fee": qty * 0.001,
            "position": np.cumsum(side * qty),
        }
    )
    ets = T0 + np.arange(n, dtype=np.int64) * (S // 4)
    eq = np.cumsum(rng.normal(0.01, 1.0, n))
    equity = pl.DataFrame(
        {
            "ts": np.concatenate([ets, ets]),
            "strategy": ["mm"] * n + [TOTAL] * n,
            "equity": np.concatenate([eq, eq]),
            "cash": 0.0,
            "fees": 0.0,
            "position_value": 0.0,
        }
    )
    positions = pl.DataFrame(
        {"ts": ets, "strategy": "mm", "instrument": INST, "position": eq, "mid": 100.0}
    )
    market = pl.DataFrame({"ts": ets, "instrument": INST, "bid": price - 0.01, "ask": price + 0.01})
    latency = pl.DataFrame(
        {
            "kind": rng.choice(["entry", "response", "round_trip"], n),
            "ns": rng.lognormal(10, 1.5, n).astype(np.int64) + 1,
            "count": rng.integers(1, 50, n),
        }
    )
    return BacktestResult(
        fills=fills,
        equity=equity,
        positions=positions,
        market=market,
        latency=latency,
        events=10 * n,
        wall_seconds=1.0,
        start_ts=T0,
        end_ts=int(ets[-1]),
        config={"tick_sizes": {INST: 0.01}},
    )


@pytest.mark.slow
def test_report_on_100k_fills_and_equity_points_takes_under_two_seconds(tmp_path: Path) -> None:
    write_report(small_result(), tmp_path / "warm")  # fonts and kernels load once per process
    big = _big_result()
    best = math.inf
    for _ in range(2):
        t = time.perf_counter()
        path = write_report(big, tmp_path / "big")
        best = min(best, time.perf_counter() - t)
    assert _imgs(path.read_text(encoding="utf-8")) == 6  # no denials
    assert best < 2.0, f"report took {best:.2f} s"


# --- BacktestResult ----------------------------------------------------------------------
def test_write_read_round_trip_keeps_every_table_and_scalar(tmp_path: Path) -> None:
    r = small_result()
    out = r.write(tmp_path / "run")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{t}.parquet" for t in ("orders", "fills", "equity", "positions")]
        + [f"{t}.parquet" for t in ("denials", "market", "latency")]
        + ["summary.json"]
    )
    back = BacktestResult.read(out)
    for name in ("orders", "fills", "equity", "positions", "denials", "market", "latency"):
        assert back.__getattribute__(name).equals(r.__getattribute__(name)), name
    assert back.scalars() == r.scalars()


def test_summary_json_holds_scalars_and_stats_with_nan_as_null(tmp_path: Path) -> None:
    r = small_result()
    r.write(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["events"] == 123_456
    assert summary["config"]["tick_sizes"] == {INST: 0.01}
    assert summary["stats"]["TOTAL"]["pnl"] == pytest.approx(1234.56)
    assert summary["stats"]["mm"]["n_fills"] == 3
    empty = BacktestResult()
    empty.write(tmp_path / "empty")
    s2 = json.loads((tmp_path / "empty" / "summary.json").read_text(encoding="utf-8"))
    assert s2["stats"]["TOTAL"]["sharpe"] is None


def test_empty_result_round_trips_with_typed_empty_tables(tmp_path: Path) -> None:
    back = BacktestResult.read(BacktestResult().write(tmp_path))
    assert back.fills.height == 0
    assert back.fills.schema == empty_table("fills").schema


def test_missing_column_is_a_data_error_naming_table_and_column() -> None:
    with pytest.raises(DataError, match=r"BacktestResult.latency lacks column\(s\) \['ns'\]"):
        BacktestResult(latency=pl.DataFrame({"kind": ["entry"], "count": [1]}))


def test_columns_are_cast_to_the_schema() -> None:
    r = BacktestResult(
        latency=pl.DataFrame(
            {"kind": ["entry"], "ns": [5], "count": [1]}, schema_overrides={"ns": pl.Int32}
        )
    )
    assert r.latency.schema["ns"] == pl.Int64
    with pytest.raises(DataError, match="cannot be cast"):
        BacktestResult(latency=pl.DataFrame({"kind": ["entry"], "ns": ["five"], "count": [1]}))


def test_read_of_a_directory_without_summary_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"summary.json not found"):
        BacktestResult.read(tmp_path)
