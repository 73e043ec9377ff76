"""The result sink (tables appended to Parquet a part at a time), file-backed results and the
streaming Tally: what is written in parts, and the statistics counted in parts, equal what
the whole tables give."""

from __future__ import annotations

import gc
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from framework.analysis import BacktestResult, summarize_all
from framework.analysis import results as results_mod
from framework.analysis.results import SCHEMAS, TABLES
from framework.analysis.sink import ResultSink
from framework.analysis.tally import Tally, tally_of
from framework.analysis.trips import round_trip_pnl_nb, round_trip_scan_nb
from framework.core.errors import DataError
from tests.unit.analysis.fixtures import assert_stats_equal, random_tables

STREAMED = ("orders", "fills", "denials", "equity", "positions")


def parts(df: pl.DataFrame, seed: int, most: int = 700) -> list[pl.DataFrame]:
    """``df`` cut into consecutive parts of random sizes (1 to ``most`` rows)."""
    rng = np.random.default_rng(seed)
    out, at = [], 0
    while at < df.height:
        n = int(rng.integers(1, most + 1))
        out.append(df.slice(at, n))
        at += n
    return out


def stream(tables: dict[str, pl.DataFrame], sink: ResultSink, seed: int = 1) -> None:
    """Add every table to ``sink`` in parts, interleaved as recorder flushes would be."""
    queues = {name: parts(df, seed + k) for k, (name, df) in enumerate(tables.items())}
    while any(queues.values()):
        for name, q in queues.items():
            if q:
                sink.add(name, q.pop(0))


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return random_tables(seed=7, n_fills=6_000)


@pytest.fixture(params=[True, False], ids=["decoded-in-thread", "decoded-by-caller"])
def streamed(
    tables: dict[str, pl.DataFrame], tmp_path: Path, request: pytest.FixtureRequest
) -> BacktestResult:
    sink = ResultSink(tmp_path / "run", row_group_rows=1_000, decode_in_thread=request.param)
    stream(tables, sink)
    return BacktestResult(files=sink.close(), tally=sink.tally, events=10, wall_seconds=1.0)


# --- files -----------------------------------------------------------------------------------
def test_tables_written_in_parts_equal_the_whole_in_bounded_row_groups(
    tables: dict[str, pl.DataFrame], streamed: BacktestResult
) -> None:
    for name in STREAMED:
        assert streamed.table(name).equals(tables[name]), name
        path = streamed.file(name)
        assert path is not None
        meta = pq.ParquetFile(path).metadata
        if tables[name].height > 2_000:
            assert meta.num_row_groups > 1, name
        # a row group is cut once the buffer reaches the bound: at most one part beyond it
        sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
        assert max(sizes) < 1_000 + 700, name
    for name in ("market", "latency"):  # nothing added: empty, with the table's columns
        assert streamed.table(name).equals(results_mod.empty_table(name))


def test_the_output_folder_shows_only_finished_files(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    sink = ResultSink(out, row_group_rows=500)
    stream(tables, sink)
    assert not list(out.glob("[!.]*"))  # only hidden temporary names while running
    files = sink.close()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.parquet" for n in TABLES)
    assert files.paths == {n: out / f"{n}.parquet" for n in TABLES}


def test_an_aborted_sink_leaves_nothing(tables: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    sink = ResultSink(out, row_group_rows=500)
    stream(tables, sink)
    sink.abort()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    temp = ResultSink(row_group_rows=500)
    stream(tables, temp)
    folder = temp._dir
    assert folder is not None
    assert folder.is_dir()
    temp.abort()
    assert not folder.exists()
    with pytest.raises(RuntimeError, match="closed"):
        temp.add("fills", tables["fills"])


def test_without_a_folder_the_files_live_as_long_as_the_result(
    tables: dict[str, pl.DataFrame],
) -> None:
    sink = ResultSink()
    stream(tables, sink)
    result = BacktestResult(files=sink.close(), tally=sink.tally)
    path = result.file("fills")
    assert path is not None
    folder = path.parent
    assert folder.is_dir()
    fills = result.fills  # loaded: stays valid after the files go
    del result, sink
    gc.collect()
    assert not folder.exists()
    assert fills.equals(tables["fills"])


def test_keep_rewrites_a_table_with_the_rows_wanted(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    sink = ResultSink(tmp_path, row_group_rows=300)
    stream(tables, sink)
    keep = ~((pl.col("strategy") == "tk") & (pl.col("instrument") == "XNAS/MSFT"))
    files = sink.close(keep={"positions": keep})
    got = pl.read_parquet(files.paths["positions"])
    assert got.equals(tables["positions"].filter(keep))
    assert sink.rows["positions"] == got.height
    assert not list(tmp_path.glob(".tmp-*"))


# --- BacktestResult on files --------------------------------------------------------------------
def test_write_links_the_files_and_leaves_files_in_place_alone(
    streamed: BacktestResult, tmp_path: Path
) -> None:
    src = streamed.file("fills")
    assert src is not None
    before = src.stat().st_mtime_ns
    streamed.write(src.parent)  # the tables are there already: only summary.json is new
    assert src.stat().st_mtime_ns == before
    assert (src.parent / "summary.json").is_file()
    other = streamed.write(tmp_path / "copy")
    assert (other / "fills.parquet").stat().st_ino == src.stat().st_ino  # a link, same disk
    back = BacktestResult.read(other)
    for name in TABLES:
        assert back.table(name).equals(streamed.table(name)), name
    assert not list(other.glob(".tmp-*"))


def test_tables_are_read_only() -> None:
    r = BacktestResult()
    with pytest.raises(AttributeError, match="read-only"):
        r.fills = pl.DataFrame()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        r.events = 3  # type: ignore[misc]
    with pytest.raises(KeyError, match="no table 'trades'"):
        r.table("trades")


# --- statistics ---------------------------------------------------------------------------------
def test_statistics_counted_while_streaming_equal_those_of_the_whole_tables(
    tables: dict[str, pl.DataFrame], streamed: BacktestResult
) -> None:
    whole = BacktestResult(**tables, events=10, wall_seconds=1.0)
    assert streamed.tally is not None
    assert streamed.tally.fills_in_order
    got, want = summarize_all(streamed), summarize_all(whole)
    assert list(got) == ["mm", "tk", "TOTAL"]
    assert_stats_equal(got, want)
    # the fixture has what the statistics are about
    assert want["TOTAL"]["n_round_trips"] > 50
    assert 0 < want["TOTAL"]["maker_share_count"] < 1
    assert want["tk"]["max_abs_position"]["XNAS/MSFT"] >= 3.0


def test_a_result_read_back_is_counted_a_batch_at_a_time(
    tables: dict[str, pl.DataFrame], streamed: BacktestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = streamed.file("fills")
    assert path is not None
    out = streamed.write(path.parent)
    monkeypatch.setattr(results_mod, "BATCH_ROWS", 512)
    back = BacktestResult.read(out)
    assert back.tally is None
    assert len(list(back.batches("fills"))) > 5
    whole = BacktestResult(**tables, events=10, wall_seconds=1.0)
    assert_stats_equal(summarize_all(back), summarize_all(whole))


def test_fills_out_of_time_order_are_recounted_from_the_sorted_table(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    fills = tables["fills"]
    chunks = parts(fills, seed=3)
    sink = ResultSink(tmp_path, row_group_rows=1_000)
    for chunk in chunks[::-1]:  # last part first
        sink.add("fills", chunk)
    r = BacktestResult(files=sink.close(), tally=sink.tally)
    assert sink.tally.fills_in_order is False
    assert tally_of(r) is not sink.tally
    shuffled = pl.concat(chunks[::-1])
    assert_stats_equal(summarize_all(r), summarize_all(BacktestResult(fills=shuffled)))
    # and what the sorted table gives
    assert_stats_equal(summarize_all(r), summarize_all(BacktestResult(fills=fills)))


def test_tally_names_strategies_and_instruments_of_its_tables(
    tables: dict[str, pl.DataFrame],
) -> None:
    t = Tally()
    t.update("fills", tables["fills"])
    t.update("equity", tables["equity"])  # not a tallied table: ignored
    assert t.names("fills", "strategy") == {"mm", "tk"}
    assert t.names("fills", "instrument") == {"XNAS/AAPL", "XNAS/MSFT"}
    assert t.names("equity", "strategy") == set()


@pytest.mark.parametrize("compiled", [True, False])
def test_round_trip_scan_in_parts_equals_one_pass(compiled: bool) -> None:
    scan = round_trip_scan_nb if compiled else round_trip_scan_nb.py_func
    fills = random_tables(seed=2, n_fills=2_000)["fills"]
    g = fills.filter((pl.col("strategy") == "mm") & (pl.col("instrument") == "XNAS/AAPL"))
    cols = (
        g["side"].to_numpy().astype(np.int8),
        g["price"].to_numpy(),
        g["qty"].to_numpy(),
        g["fee"].to_numpy(),
        g["position"].to_numpy(),
    )
    whole = np.empty(g.height)
    n = round_trip_pnl_nb(*cols, whole)
    assert n > 5
    got: list[float] = []
    carry = np.zeros(2)
    for a, b in ((0, 7), (7, 8), (8, 40), (40, 300), (300, g.height)):
        out = np.empty(b - a)
        k = scan(*(c[a:b] for c in cols), out, carry)
        got += out[:k].tolist()
    assert got == whole[:n].tolist()


def test_result_files_keep_their_dtypes_on_disk(streamed: BacktestResult) -> None:
    for name in TABLES:
        path = streamed.file(name)
        assert path is not None
        assert dict(pl.read_parquet_schema(path)) == dict(results_mod.SCHEMAS[name]), name
        assert os.path.getsize(path) > 0


def test_a_failed_write_is_reported_by_the_sink_and_nothing_is_left(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    sink = ResultSink(out, row_group_rows=100)
    sink.add("fills", tables["fills"])  # a row group: the folder is made, the writer starts
    deadline = time.monotonic() + 30
    while sink.rows["fills"] == 0 and time.monotonic() < deadline:  # the writer is idle then
        time.sleep(0.01)
    shutil.rmtree(out)  # the disk goes away under the run
    with pytest.raises(OSError, match=r"writing result table \w+ to .* failed"):  # noqa: PT012
        for chunk in parts(tables["orders"], seed=4):  # raised by an add, else by close
            sink.add("orders", chunk)
        sink.close()
    assert not out.exists()
    with pytest.raises(RuntimeError, match="closed"):
        sink.add("orders", tables["orders"])


def test_a_table_may_have_more_columns_than_schemas_never_fewer(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    orders = tables["orders"].with_columns(pl.col("submit_ts").alias("end_ts"))
    schemas = {**SCHEMAS, "orders": {**SCHEMAS["orders"], "end_ts": pl.Int64()}}
    sink = ResultSink(tmp_path, schemas=schemas, row_group_rows=1_000)
    for chunk in parts(orders, seed=5):
        sink.add("orders", chunk)
    r = BacktestResult(files=sink.close(), tally=sink.tally)
    assert r.orders.equals(orders)
    assert r.table("fills").columns == list(SCHEMAS["fills"])  # empty, all its columns
    short = {**SCHEMAS, "fills": {k: v for k, v in SCHEMAS["fills"].items() if k != "fee"}}
    with pytest.raises(ValueError, match=r"fills schema lacks column\(s\) \['fee'\]"):
        ResultSink(tmp_path, schemas=short)


def test_a_result_never_reads_tables_another_run_wrote_over_its_files(
    tables: dict[str, pl.DataFrame], streamed: BacktestResult, tmp_path: Path
) -> None:
    out = streamed.write(tmp_path / "run")
    first = BacktestResult.read(out)
    assert first.rows("fills") == tables["fills"].height
    BacktestResult(fills=tables["fills"].head(10)).write(out)  # the folder is reused
    with pytest.raises(DataError, match=r"fills.parquet was replaced or changed"):
        _ = first.fills
    assert BacktestResult.read(out).fills.height == 10


@pytest.mark.parametrize("in_thread", [True, False])
def test_parts_made_by_the_sinks_thread_keep_their_order_and_a_failure_aborts_the_sink(
    tables: dict[str, pl.DataFrame], tmp_path: Path, in_thread: bool
) -> None:
    """add_later: the engine hands over raw rows and their decoder; the tables are made in
    the order added, and what a decode raises comes back to the caller with nothing left."""
    out = tmp_path / "run"
    sink = ResultSink(out, row_group_rows=500, decode_in_thread=in_thread)
    for chunk in parts(tables["fills"], seed=3):
        sink.add_later("fills", lambda c=chunk: c)
    sink.drain()  # every part counted: the tally is complete before close
    assert sink.tally.fills_in_order
    files = sink.close()
    assert pl.read_parquet(files.paths["fills"]).equals(tables["fills"])

    bad = ResultSink(out / "bad", row_group_rows=100, decode_in_thread=in_thread)
    bad.add("fills", tables["fills"])  # row groups written before the failure

    def broken() -> pl.DataFrame:
        msg = "the recorder wrote instrument code 9, which has no name; this is an engine bug"
        raise ValueError(msg)

    with pytest.raises(ValueError, match="engine bug"):  # noqa: PT012 (raised here or later)
        bad.add_later("orders", broken)
        bad.drain()
    bad.abort()
    assert not (out / "bad").exists() or not any((out / "bad").iterdir())
    with pytest.raises(RuntimeError, match="closed"):
        bad.add("orders", tables["orders"])
