"""The Binance websocket handler against a local websockets server (127.0.0.1, free port)
replaying the bundled capture: its events and its book equal the importer's for the same
capture; a lost diff is detected by update id and the book resynced from a new snapshot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from framework.book.replay import BookReplayer
from framework.cli import main
from framework.core.events import EVENT_DTYPE, KIND_LEVEL
from framework.store import TickStore
from live.feeds.binance_replay import CaptureReplay, read_capture, serve_capture
from live.feeds.binance_ws import DepthSync, run_binance_ws

SPOT = "crypto_hftbacktest_binance_raw_feed/binance_spot_btcusdt_20240808.gz"
USDM = "crypto_hftbacktest_binance_raw_feed/binance_usdm_btcusdt_20240808.gz"
FIELDS = [f for f in EVENT_DTYPE.names or () if f != "local_ts"]


def _import(path: Path, root: str) -> tuple[np.ndarray, object]:
    assert main(["data", "import", "binance", str(path), "--store", root]) == 0
    ts = TickStore(root)
    (key,) = ts.keys()
    return ts.read(key.venue, key.symbol, key.date), ts.instrument(key.venue, key.symbol,
                                                                    key.date)


def _follow(lines: list[str], inst: object, futures: bool, skip: tuple[int, ...] = ()
            ) -> tuple[DepthSync, np.ndarray, np.ndarray, CaptureReplay]:
    sync = DepthSync(tick_size=inst.tick_size, lot_size=inst.lot_size,  # type: ignore[attr-defined]
                     futures=futures)
    book = BookReplayer(levels=10, l3=False)
    got: list[np.ndarray] = []
    rows: list[np.ndarray] = []

    def on_events(ev: np.ndarray) -> None:
        got.append(ev)
        rows.append(book.feed(ev))

    replay = CaptureReplay(lines, skip_lines=skip)

    async def go() -> None:
        server = await serve_capture(replay)
        port = server.sockets[0].getsockname()[1]
        try:
            await run_binance_ws(f"ws://127.0.0.1:{port}/stream", sync, on_events=on_events,
                                 idle_timeout_s=20)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(go(), 300))
    return sync, np.concatenate(got), np.concatenate(rows), replay


@pytest.mark.parametrize(("sample", "futures"), [
    (SPOT, False), pytest.param(USDM, True, marks=pytest.mark.slow)])
def test_handler_events_and_book_equal_the_import_of_the_same_capture(
    shared_data: Path, tmp_path: Path, sample: str, futures: bool
) -> None:
    ref, inst = _import(shared_data / sample, str(tmp_path))
    sync, got, rows, _ = _follow(read_capture(shared_data / sample), inst, futures)
    assert sync.gaps == 0
    assert sync.snapshots == 1
    for f in FIELDS:
        np.testing.assert_array_equal(got[f], ref[f], err_msg=f)
    ref_rows = BookReplayer(levels=10, l3=False).feed(ref)
    assert len(rows) == len(ref_rows) > 10_000
    np.testing.assert_array_equal(rows, ref_rows)


def test_a_lost_diff_is_a_gap_and_the_book_resyncs_from_a_new_snapshot(
    shared_data: Path, tmp_path: Path
) -> None:
    ref, inst = _import(shared_data / SPOT, str(tmp_path))
    lines = read_capture(shared_data / SPOT)
    depth = [i for i, ln in enumerate(lines, 1) if "@depth" in ln[:80]]
    lost = depth[len(depth) // 2]
    sync, got, _, replay = _follow(lines, inst, False, skip=(lost,))
    assert sync.gaps == 1
    assert sync.snapshots == 2
    assert replay.requests_answered == 2
    # after the resync the depth the handler holds is the exchange's again: the last
    # diff's levels agree with the import's
    last_u = int(ref["order_id"][ref["kind"] == KIND_LEVEL][-1])
    mine = got[(got["kind"] == KIND_LEVEL) & (got["order_id"] == last_u)]
    theirs = ref[(ref["kind"] == KIND_LEVEL) & (ref["order_id"] == last_u)]
    np.testing.assert_array_equal(mine[["price", "qty", "side"]], theirs[["price", "qty", "side"]])
    book_mine = BookReplayer(levels=10, l3=False)
    book_ref = BookReplayer(levels=10, l3=False)
    np.testing.assert_array_equal(book_mine.feed(got)[-1], book_ref.feed(ref)[-1])
