"""An input file's bytes, gzip undone; cut and corrupt streams are damage, not crashes.

Every importer that reads gzip (Binance captures, Tardis CSV, ITCH ``.gz``) goes through
:func:`read_input`, so a bad stream ends the same way everywhere: one line naming the file
when nothing decodes, else the decodable prefix with the damage counted in the report (the
import then needs ``--allow-partial``).
"""

from __future__ import annotations

import zlib
from pathlib import Path

from framework.core.errors import FormatError
from framework.ingest.base import ImportReport

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16  # compressed bytes per decompress call
_STEP = 1 << 8  # after a fault, the chunk again in steps this small: little is lost


def read_input(path: Path, report: ImportReport) -> bytes:
    """The file's bytes; gzip members (possibly concatenated) are decompressed.

    A corrupt or cut stream keeps what decoded before the fault and records the damage
    (``report.damage``); one that decodes to nothing is a :class:`FormatError`.
    """
    data = path.read_bytes()
    if not data:
        msg = f"{path}: empty file; nothing to import"
        raise FormatError(msg)
    if data[:2] != GZIP_MAGIC:
        return data
    out: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos : pos + 2] != GZIP_MAGIC:
            if data[pos:].strip(b"\0"):  # padding of NULs after a member is allowed
                report.damage("bytes after the gzip stream that are not gzip",
                              n - pos, at=f"byte {pos:,}", unit="bytes")
            break
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while pos < n and not d.eof:
                chunk = data[pos : pos + _CHUNK]
                before = d.copy()
                try:
                    out.append(d.decompress(chunk))
                except zlib.error:
                    # decode the chunk again in small steps: keep what precedes the fault
                    d = before
                    for k in range(0, len(chunk), _STEP):
                        step = chunk[k : k + _STEP]
                        out.append(d.decompress(step))
                        pos += len(step)
                    raise
                pos += len(chunk) - (len(d.unused_data) if d.eof else 0)
        except zlib.error as exc:
            if not any(out):
                msg = f"{path}: gzip data is corrupt ({exc}); nothing decodes, re-download the file"
                raise FormatError(msg) from exc
            report.damage(f"gzip data corrupt ({exc}); the rest of the file does not decode",
                          n - pos, at=f"compressed byte {pos:,}", unit="bytes")
            break
        if not d.eof:
            out.append(d.flush())
            report.damage("gzip stream cut: the file ends inside it (an interrupted copy?)",
                          at=f"compressed byte {n:,}")
            break
    text = b"".join(out)
    if not text:
        msg = f"{path}: gzip file holds no data"
        raise FormatError(msg)
    return text
