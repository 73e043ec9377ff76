"""The Arrow schema that mirrors :data:`~framework.core.events.EVENT_DTYPE` field for field."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from numba import njit

from framework.core.errors import DataError
from framework.core.events import EVENT_DTYPE, EVENT_FIELDS, EventArray

SCHEMA_VERSION: Final = 1

#: metadata keys stored in every Parquet file of the store
META_SCHEMA_VERSION: Final = b"hftlab.schema_version"
META_INSTRUMENT: Final = b"hftlab.instrument"
META_DATE: Final = b"hftlab.date"
#: the same random id in a day's events file and its labels file: they were written together
META_WRITE_ID: Final = b"hftlab.write_id"

ARROW_SCHEMA: Final = pa.schema(
    [pa.field(name, pa.from_numpy_dtype(np.dtype(t)), nullable=False) for name, t in EVENT_FIELDS]
)


def events_to_table(events: EventArray, metadata: dict[bytes, bytes] | None = None) -> pa.Table:
    """Wrap an event array as an Arrow table (one copy per column, no per-row work)."""
    if events.dtype != EVENT_DTYPE:
        msg = f"expected an EVENT_DTYPE array, got dtype {events.dtype}"
        raise DataError(msg)
    cols = [pa.array(np.ascontiguousarray(events[name])) for name, _ in EVENT_FIELDS]
    schema = ARROW_SCHEMA.with_metadata(metadata) if metadata else ARROW_SCHEMA
    return pa.Table.from_arrays(cols, schema=schema)


def batch_to_events(batch: pa.RecordBatch | pa.Table, out: EventArray | None = None) -> EventArray:
    """Convert an Arrow batch (or table) with the event schema to an event array.

    ``out`` may be a preallocated buffer of at least ``batch.num_rows`` rows; the filled
    prefix is returned.
    """
    n = batch.num_rows
    names = batch.schema.names
    missing = [name for name, _ in EVENT_FIELDS if name not in names]
    if missing:
        msg = f"table lacks event column(s) {missing}; it was not written by hftlab's store"
        raise DataError(msg)
    dst = np.empty(n, dtype=EVENT_DTYPE) if out is None else out[:n]
    cols = []
    for name, t in EVENT_FIELDS:
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        arr = col.to_numpy(zero_copy_only=False)
        if arr.dtype != np.dtype(t):
            arr = arr.astype(t)
        cols.append(arr)
    _fill_events(dst, *cols)
    return dst


@njit(cache=True, nogil=True)
def _fill_events(
    dst: EventArray,
    exch_ts: npt.NDArray[np.int64],
    local_ts: npt.NDArray[np.int64],
    price: npt.NDArray[np.int64],
    qty: npt.NDArray[np.int64],
    order_id: npt.NDArray[np.uint64],
    instrument: npt.NDArray[np.uint16],
    kind: npt.NDArray[np.uint8],
    side: npt.NDArray[np.int8],
    flags: npt.NDArray[np.uint32],
) -> None:
    # One pass writing each 48-byte row once: about 3x faster than nine strided copies.
    for i in range(dst.shape[0]):
        r = dst[i]
        r.exch_ts = exch_ts[i]
        r.local_ts = local_ts[i]
        r.price = price[i]
        r.qty = qty[i]
        r.order_id = order_id[i]
        r.instrument = instrument[i]
        r.kind = kind[i]
        r.side = side[i]
        r.flags = flags[i]
