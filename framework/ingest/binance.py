"""Binance importer: raw websocket captures and NautilusTrader's Binance fixtures.

``import_binance(paths, opts)`` (format ``"binance"``) detects each file's kind from its bytes:

* a raw websocket capture (hftbacktest's collector; gzip or plain text; ``<local_recv_ns>
  <json>`` lines): :mod:`framework.ingest.binance_raw` says how its streams map to events;
* a NautilusTrader depth CSV or trades/quotes Parquet: see
  :mod:`framework.ingest.binance_files`.

Prices and sizes are parsed exactly from their decimal text (no float rounding). Tick and
lot size: ``--tick-size``/``--lot-size``, else the finest power-of-ten grid the data uses
(BTCUSDT spot 0.01 / 0.00001, USD-M 0.1 / 0.001); off-grid values are rejected. Output is
split by UTC day of ``local_ts``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from framework.core.errors import FormatError
from framework.ingest.assemble import Batch, assemble
from framework.ingest.base import ImportOptions, ImportReport, ImportResult, require_files
from framework.ingest.binance_files import (
    NAUTILUS_DEPTH_COLS,
    import_nautilus_depth,
    import_parquet,
)
from framework.ingest.binance_raw import import_capture
from framework.ingest.rawfile import read_input

_CAPTURE_RE = re.compile(rb"^\d{10,20} [\[{]")


def import_binance(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import Binance raw captures and NautilusTrader Binance fixtures (see module doc)."""
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files))
    batches: list[Batch] = []
    for path in files:
        with path.open("rb") as fh:
            magic = fh.read(4)
        if magic == b"PAR1":
            batches.append(import_parquet(path, opts, report))
            continue
        data = read_input(path, report)
        head = data[:1 << 20].split(b"\n", 21)[:20]
        first = head[0]
        # a capture if most of the first lines are ones: a damaged first line is not fatal
        if 2 * sum(bool(_CAPTURE_RE.match(x)) for x in head) > len([x for x in head if x]):
            batches.append(import_capture(path, data, opts, report))
        elif first.strip().lower().startswith(b"symbol,") and all(
            c.encode() in first for c in NAUTILUS_DEPTH_COLS
        ):
            batches += import_nautilus_depth(path, data, opts, report)
        else:
            msg = (
                f"{path}: not a Binance file this importer reads; expected a raw websocket "
                "capture ('<recv_ns> <json>' lines, plain or gzip), a NautilusTrader depth CSV "
                f"({','.join(NAUTILUS_DEPTH_COLS)},pu) or trades/quotes Parquet; the file "
                f"starts with {first[:24]!r}"
            )
            raise FormatError(msg)
    return assemble(batches, opts, report)
