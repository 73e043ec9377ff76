import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.core import Instrument, StoreError
from framework.core.events import (
    EVENT_DTYPE,
    FLAG_LAST,
    KIND_ADD,
    KIND_NAMES,
    KIND_TRADE,
    make_events,
)
from framework.store import ARROW_SCHEMA, TickStore, events_to_table
from framework.store.schema import batch_to_events

DAY = dt.date(2024, 1, 2)
INST = Instrument(venue="SIM", symbol="ABC", tick_size="0.01")


def random_events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = np.zeros(n, dtype=EVENT_DTYPE)
    t = np.cumsum(rng.integers(0, 5000, n)).astype(np.int64) + 1_700_000_000_000_000_000
    e["exch_ts"] = t
    e["local_ts"] = t + 100
    e["price"] = rng.integers(-5, 100_000, n)
    e["qty"] = rng.integers(0, 1 << 40, n)
    e["order_id"] = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    e["instrument"] = rng.integers(0, 65535, n)
    e["kind"] = rng.choice(list(KIND_NAMES), n)
    e["side"] = rng.integers(-1, 2, n)
    e["flags"] = rng.integers(0, 1 << 32, n, dtype=np.uint32)
    return e


def test_arrow_schema_mirrors_event_dtype_field_for_field():
    assert ARROW_SCHEMA.names == list(EVENT_DTYPE.names)
    for f in ARROW_SCHEMA:
        assert f.type.to_pandas_dtype() == EVENT_DTYPE[f.name]


@pytest.mark.parametrize("kind", sorted(KIND_NAMES))
def test_round_trip_is_identical_for_every_kind(store_root, kind):
    ev = random_events(5000, seed=kind)
    ev["kind"] = kind
    store = TickStore(store_root)
    store.write(INST, DAY, ev)
    back = store.read("SIM", "ABC", DAY)
    assert back.dtype == EVENT_DTYPE
    assert back.tobytes() == ev.tobytes()


def test_round_trip_across_many_row_groups_and_streaming(store_root, monkeypatch):
    import framework.store.tickstore as ts

    monkeypatch.setattr(ts, "ROW_GROUP_ROWS", 1000)
    ev = random_events(10_500)
    store = TickStore(store_root)
    store.write(INST, DAY, ev)
    assert store.info("SIM", "ABC", DAY).row_groups == 11
    batches = list(store.iter_batches("SIM", "ABC", [DAY]))
    assert [len(b) for b in batches] == [1000] * 10 + [500]
    assert np.concatenate(batches).tobytes() == ev.tobytes()


def test_metadata_holds_instrument_and_schema_version(store_root):
    store = TickStore(store_root)
    path = store.write(INST, DAY, random_events(10))
    md = pq.read_schema(path).metadata
    assert md[b"hftlab.schema_version"] == b"1"
    assert Instrument.from_json(md[b"hftlab.instrument"]) == INST
    assert store.instrument("SIM", "ABC", "2024-01-02") == INST


def test_failed_write_leaves_nothing_behind(store_root):
    store = TickStore(store_root)
    good = random_events(100)
    bad = np.zeros(3, dtype=[("x", "i8")])
    with pytest.raises(Exception, match="dtype"):
        store.write_many([(INST, DAY, good, None), (INST, dt.date(2024, 1, 3), bad, None)])
    # nothing but the staging folder's own lock file: no day folder, no temporary file
    assert sorted(store_root.rglob("*")) == [store_root / ".staging", store_root / ".staging/.lock"]
    assert store.keys() == []


def test_unsorted_events_are_refused_with_advice(store_root):
    ev = make_events(local_ts=[2, 1])
    with pytest.raises(Exception, match="not sorted by local_ts"):
        TickStore(store_root).write(INST, DAY, ev)


def test_missing_day_error_lists_what_is_stored(store_root):
    store = TickStore(store_root)
    store.write(INST, DAY, random_events(10))
    with pytest.raises(StoreError, match=r"no stored day SIM/ABC/2024-01-05.*SIM/ABC/2024-01-02"):
        store.read("SIM", "ABC", "2024-01-05")


def test_corrupt_file_is_reported_not_crashed(store_root):
    store = TickStore(store_root)
    path = store.write(INST, DAY, random_events(10))
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(StoreError, match="corrupt"):
        store.read("SIM", "ABC", DAY)


def test_list_delete_and_labels(store_root):
    store = TickStore(store_root)
    labels = pa.table({"start_ts": [0], "end_ts": [10], "regime": ["calm"]})
    store.write(INST, DAY, random_events(10), labels=labels)
    store.write(INST, dt.date(2024, 1, 3), random_events(10))
    assert [str(k) for k in store.keys()]  # noqa: SIM118 (a method, not a dict) == ["SIM/ABC/2024-01-02", "SIM/ABC/2024-01-03"]
    assert store.read_labels("SIM", "ABC", DAY).column("regime").to_pylist() == ["calm"]
    removed = store.delete("SIM", "ABC", DAY)
    assert len(removed) == 2
    assert [str(k) for k in store.keys()]  # noqa: SIM118 (a method, not a dict) == ["SIM/ABC/2024-01-03"]
    store.delete("SIM", "ABC")
    assert store.keys() == []


def test_sql_over_store_has_venue_symbol_date_columns(store_root):
    store = TickStore(store_root)
    ev = make_events(
        local_ts=[1, 2, 3], kind=[KIND_ADD, KIND_TRADE, KIND_TRADE], flags=[FLAG_LAST] * 3
    )
    store.write(INST, DAY, ev)
    df = store.sql(
        "SELECT venue, symbol, date, kind, count(*) AS n FROM events GROUP BY ALL ORDER BY kind"
    )
    assert df.rows() == [("SIM", "ABC", DAY, KIND_ADD, 1), ("SIM", "ABC", DAY, KIND_TRADE, 2)]


def test_polars_frame_in_real_units(store_root):
    store = TickStore(store_root)
    store.write(INST, DAY, make_events(local_ts=[1], price=[10101], qty=[7]))
    df = store.frame("SIM", "ABC", DAY)
    assert df["price"].to_list() == [101.01]
    assert df["qty"].to_list() == [7.0]


def test_batch_to_events_rejects_foreign_tables():
    with pytest.raises(Exception, match="lacks event column"):
        batch_to_events(pa.table({"a": [1]}))
    t = events_to_table(random_events(3))
    assert batch_to_events(t).tobytes() == batch_to_events(t.to_batches()[0]).tobytes()
