"""Staged writes: temporary files live where no reader looks, dead writers' leftovers are
removed by the next write, live writers' never, and a day's labels belong to its events."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.cli import main
from framework.core import ConfigError, Instrument, StoreError
from framework.core.events import make_events
from framework.store import TickStore
from framework.store.schema import META_WRITE_ID
from framework.store.staging import LEGACY_TMP_AGE_S, STAGING_DIR, Staging, clean_stale

DAY = dt.date(2024, 1, 2)
INST = Instrument(venue="SIM", symbol="ABC", tick_size="0.01")


def events(n: int, start: int = 1) -> np.ndarray:
    return make_events(local_ts=np.arange(start, start + n), qty=np.arange(n) + 1)


def labels(regime: str) -> pa.Table:
    return pa.table({"start_ts": [0], "end_ts": [10], "regime": [regime]})


def dead_writer_folder(root: Path, name: str = "99999-deadbeef0000") -> Path:
    """What a writer killed mid-write leaves: its folder, unlocked, with a partial file."""
    folder = root / STAGING_DIR / name
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    (folder / f"0001-{DAY.isoformat()}.parquet.tmp").write_bytes(b"PAR1 half a file")
    return folder


def visible_files(root: Path) -> list[str]:
    """Every file outside the staging folder, relative to the root."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and STAGING_DIR not in p.relative_to(root).parts
    )


def test_a_write_stages_its_files_outside_the_day_folders(store_root: Path) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(5), labels=labels("calm"))
    assert visible_files(store_root) == [
        "SIM/ABC/2024-01-02.labels.parquet",
        "SIM/ABC/2024-01-02.parquet",
    ]
    # the staging folder keeps only its lock file once the write is done
    assert [p.name for p in (store_root / STAGING_DIR).iterdir()] == [".lock"]


def test_the_next_write_removes_a_dead_writers_folder(store_root: Path) -> None:
    stale = dead_writer_folder(store_root)
    TickStore(store_root).write(INST, DAY, events(5))
    assert not stale.exists()


def test_a_live_writers_folder_survives_another_write(store_root: Path) -> None:
    store = TickStore(store_root)
    with Staging(store_root) as live:
        assert live.folder is not None
        tmp = live.file_for(store.path_for("SIM", "ABC", DAY))
        tmp.write_bytes(b"being written")
        store.write(INST, dt.date(2024, 1, 3), events(5))  # cleans up, but not this
        assert tmp.read_bytes() == b"being written"
        assert clean_stale(store_root) == []
    assert not tmp.exists()


def test_a_folder_made_but_never_locked_is_a_dead_writers(store_root: Path) -> None:
    # killed inside the set-up (which holds .staging/.lock): no lock file yet
    folder = store_root / STAGING_DIR / "4242-0123456789ab"
    folder.mkdir(parents=True)
    assert clean_stale(store_root) == [folder]
    assert not folder.exists()


def test_old_style_temp_files_beside_the_days_are_removed_when_stale(store_root: Path) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(5))
    folder = store_root / "SIM" / "ABC"
    old = folder / ".tmp-0123abcd-2024-01-02.parquet"
    fresh = folder / ".tmp-4567ef01-2024-01-03.parquet"
    for p in (old, fresh):
        p.write_bytes(b"PAR1 half")
    past = time.time() - LEGACY_TMP_AGE_S - 60
    os.utime(old, (past, past))
    # readers never see them, stale or not
    assert [str(k) for k in store.keys()] == ["SIM/ABC/2024-01-02"]  # noqa: SIM118
    assert store.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [5]
    store.write(INST, DAY, events(6))
    assert not old.exists()
    assert fresh.exists()  # may belong to a write of an old version still running


def test_readers_ignore_the_staging_folder_and_dot_names(store_root: Path, capsys) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(5))
    dead_writer_folder(store_root)
    # a staged file named like a day, where a careless glob would find it
    (store_root / STAGING_DIR / "x").mkdir()
    (store_root / STAGING_DIR / "x" / "2024-01-02.parquet").write_bytes(b"PAR1 partial")
    (store_root / "SIM" / ".hidden").mkdir()
    (store_root / "SIM" / ".hidden" / "2024-01-02.parquet").write_bytes(b"PAR1 partial")
    assert [str(k) for k in store.keys()] == ["SIM/ABC/2024-01-02"]  # noqa: SIM118
    assert store.sql("SELECT count(*) AS n FROM events")["n"].to_list() == [5]
    root = ["--store", str(store_root)]
    for argv in (["data", "ls"], ["data", "info"], ["data", "info", "SIM/ABC"]):
        assert main([*argv, *root]) == 0, capsys.readouterr().err
    assert main(["data", "sql", "SELECT count(*) FROM events_named", *root]) == 0
    assert "hftlab: error" not in capsys.readouterr().err


@pytest.mark.parametrize("name", [".staging", ".x", "", "a/b", "..", "a\\b"])
def test_venue_and_symbol_names_cannot_reach_outside_their_folder(
    store_root: Path, name: str
) -> None:
    store = TickStore(store_root)
    with pytest.raises(ConfigError, match="cannot name a folder of the store"):
        store.path_for(name, "ABC", DAY)
    with pytest.raises(ConfigError, match="cannot name a folder of the store"):
        store.delete("SIM", name, DAY)


def test_labels_are_those_written_with_the_events(store_root: Path) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(5), labels=labels("calm"))
    lp = store.labels_path_for("SIM", "ABC", DAY)
    meta = pq.read_schema(lp).metadata
    assert (
        meta[META_WRITE_ID]
        == pq.read_schema(store.path_for("SIM", "ABC", DAY)).metadata[META_WRITE_ID]
    )
    # a rewrite without labels removes the old ones ...
    store.write(INST, DAY, events(6))
    assert not lp.exists()
    assert store.read_labels("SIM", "ABC", DAY) is None
    # ... and labels left by another write of the day (one killed between its two files)
    # are not paired with these events
    store.write(INST, DAY, events(7), labels=labels("trending"))
    kept = pq.read_table(lp)
    store.write(INST, DAY, events(8))
    pq.write_table(kept, lp)
    assert store.read_labels("SIM", "ABC", DAY) is None
    store.write(INST, DAY, events(8), labels=labels("calm"))
    assert store.read_labels("SIM", "ABC", DAY).column("regime").to_pylist() == ["calm"]


def test_labels_of_stores_written_before_write_ids_still_read(store_root: Path) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(5))
    path = store.path_for("SIM", "ABC", DAY)
    old = pq.read_table(path)
    meta = {k: v for k, v in old.schema.metadata.items() if k != META_WRITE_ID}
    pq.write_table(old.replace_schema_metadata(meta), path)  # as an earlier version wrote it
    pq.write_table(labels("calm"), store.labels_path_for("SIM", "ABC", DAY))
    assert store.read_labels("SIM", "ABC", DAY).column("regime").to_pylist() == ["calm"]
    # labels without an id beside events with one come from an earlier write: not these
    store.write(INST, DAY, events(5))
    pq.write_table(labels("calm"), store.labels_path_for("SIM", "ABC", DAY))
    assert store.read_labels("SIM", "ABC", DAY) is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"PAR1" + b"\0" * 64, id="garbage"),
    ],
)
def test_a_damaged_day_file_is_named_by_every_reader(store_root: Path, damage, capsys) -> None:
    store = TickStore(store_root)
    store.write(INST, DAY, events(500))
    store.write(INST, dt.date(2024, 1, 3), events(5))
    path = store.path_for("SIM", "ABC", DAY)
    path.write_bytes(damage(path.read_bytes()))
    readers = [
        lambda: store.read("SIM", "ABC", DAY),
        lambda: list(store.iter_batches("SIM", "ABC", [DAY])),
        lambda: store.info("SIM", "ABC", DAY),
        lambda: store.kind_counts("SIM", "ABC", DAY),
        lambda: store.frame("SIM", "ABC", DAY),
        lambda: store.scan("SIM", "ABC"),
        lambda: store.sql("SELECT count(*) FROM events"),
    ]
    for reader in readers:
        with pytest.raises(StoreError, match=f"{path}: cannot read Parquet"):
            reader()
    root = ["--store", str(store_root)]
    for argv in (
        ["data", "ls"],
        ["data", "info"],
        ["data", "info", "SIM/ABC"],
        ["data", "dump", "SIM/ABC/2024-01-02"],
        ["data", "sql", "SELECT 1"],
    ):
        assert main([*argv, *root]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (argv, err)
        assert str(path) in err[0]
        assert "corrupt" in err[0]
    # ls still lists the readable day, and says which one is not
    main(["data", "ls", *root])
    out = capsys.readouterr().out
    assert "SIM/ABC/2024-01-03" in out
    assert f"unreadable: {path}" in out
