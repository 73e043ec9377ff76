"""Decoding Databento files into record arrays: DBN, DBN record fragments and legacy DBZ.

All three are decoded by the official ``databento_dbn`` decoder (records of versions 1-3 are
upgraded to v3); zstd is undone here with ``zstandard`` so a cut frame is detected exactly.
Each decoded record is turned into bytes and read with the package's own numpy layout
(``RecordClass._dtypes``).

* **DBN** (``.dbn``, ``.dbn.zst``): a metadata header ("DBN" + version) names the dataset,
  schema and symbology; then the records.
* **Fragments** (``*.frag``, ``*.frag.zst``): DBN records with no metadata header, decoded with
  ``DBNDecoder(has_metadata=False, input_version=N)``. N comes from the ``dbn_version``
  import option (``extra["dbn_version"]``), else from the name (``.v1.``/``.v2.``/``.v3.``),
  else from the length of a leading definition record (360/400/520 bytes in v1/v2/v3), else 2
  (the version of the unversioned DBN files Databento's tests ship). A definition record's
  length is checked against N, because the decoder panics on a definition of the wrong size.
  A fragment names no dataset and no symbols: the importer takes venue and symbol from the
  definition records of the import (or ``--venue``/``--symbol``).
* **DBZ** (``.dbz``), DBN's predecessor. Layout as written and read by the ``dbz`` crate in the
  databento/dbn repository history (``src/dbz-lib/src/write/dbz.rs``, ``Metadata::encode``,
  and ``src/dbz-lib/src/read.rs``, ``Metadata::decode``):

  - a zstd skippable frame: magic ``0x184D2A50`` (bytes ``50 2A 4D 18``), u32 LE frame size,
    then the metadata: ``"DBZ"`` + u8 version (1), dataset (16-byte NUL-padded cstr),
    schema (u16 LE), start, end, limit, record_count (u64 LE each), compression (u8),
    stype_in (u8), stype_out (u8), 39 reserved bytes (96 fixed bytes in all), then a zstd
    frame of variable metadata: u32 schema_definition_length (0), symbols, partial,
    not_found (each u32 count + 22-byte cstrs), mappings (u32 count; each a 22-byte native
    symbol, u32 interval count, intervals of u32 start date, u32 end date as YYYYMMDD and a
    22-byte symbol);
  - then the records, zstd-compressed, in the layout that became DBN version 1.

  Enum values are those of ``databento_defs`` of that time: schema 0 mbo, 1 mbp-1, 2 mbp-10,
  3 tbbo, 4 trades, 5-8 ohlcv-1s/1m/1h/1d, 9 definition, 10 statistics, 11 status (the
  10 sample files agree); stype 0 product_id (today's instrument_id), 1 native (today's
  raw_symbol), 2 smart. If the mappings cannot be read the file still imports and the
  importer names instruments ``ID<instrument_id>`` with a note.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import databento_dbn as dbn
import numpy as np
import numpy.typing as npt
import zstandard

from framework.core.errors import DataError, FormatError
from framework.ingest.dbn_symbols import Mapping, Symbols
from framework.ingest.native import quiet_native_stderr

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBZ_MAGIC = b"\x50\x2a\x4d\x18"  # a zstd skippable frame: how legacy .dbz files begin
_CHUNK = 1 << 22

_RTYPE_DEFINITION = 0x13
#: InstrumentDefMsg size in bytes -> DBN version
_DEF_SIZE_VERSION = {360: 1, 400: 2, 520: 3}
_VERSION_IN_NAME = re.compile(r"\.v(\d+)\.")
_DEFAULT_FRAGMENT_VERSION = 2

_DBZ_FIXED_LEN = 96
_DBZ_SYMBOL_LEN = 22
_DBZ_SCHEMAS = ("mbo", "mbp-1", "mbp-10", "tbbo", "trades", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h",
                "ohlcv-1d", "definition", "statistics", "status")
_DBZ_STYPES = {0: "instrument_id", 1: "raw_symbol", 2: "smart"}


@dataclasses.dataclass
class Decoded:
    """One file: what it says about itself and its records grouped by record class."""

    path: Path
    kind: str  #: "dbn", "fragment" or "dbz"
    dataset: str  #: "" when the file does not name one (fragments)
    schema: str  #: "" when the file does not name one
    symbols: Symbols
    records: dict[type, npt.NDArray[np.void]]
    definitions: list[Any]
    n_records: int
    notes: list[str] = dataclasses.field(default_factory=list)


def plain_chunks(path: Path, start: int = 0) -> Iterator[bytes]:
    """The file's bytes from ``start``, zstd frames undone; FormatError on a cut or bad frame."""
    with path.open("rb") as fh:
        fh.seek(start)
        head = fh.read(4)
        fh.seek(start)
        if head != _ZSTD_MAGIC:
            while chunk := fh.read(_CHUNK):
                yield chunk
            return
        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        in_frame = False
        try:
            while chunk := fh.read(_CHUNK):
                data = chunk
                while data:
                    out = dobj.decompress(data)
                    in_frame = True
                    if out:
                        yield out
                    if dobj.eof:
                        data = dobj.unused_data
                        dobj = dctx.decompressobj()
                        in_frame = False
                    else:
                        data = b""
        except zstandard.ZstdError as exc:
            msg = f"{path}: corrupt zstd data ({exc}); the file is damaged, download it again"
            raise FormatError(msg) from exc
        if in_frame:
            msg = (
                f"{path}: truncated: the last zstd frame ends early; the file was cut "
                "(an interrupted download?), download it again"
            )
            raise FormatError(msg)


def _no_header_error(path: Path, head: bytes) -> FormatError:
    what = f"it does not start with 'DBN' (first bytes {head[:8]!r})"
    todo = ("check that this is a Databento DBN file (.dbn or .dbn.zst); a record fragment "
            "without header must have '.frag' in its name")
    msg = f"{path}: has no DBN metadata header; {what}; {todo}"
    return FormatError(msg)


def _new_decoder(*, has_metadata: bool, version: int | None = None) -> Any:
    # the stubs declare enum members as their value types (int, str): cast to the enums
    return dbn.DBNDecoder(
        has_metadata=has_metadata, input_version=version,
        upgrade_policy=cast(dbn.VersionUpgradePolicy, dbn.VersionUpgradePolicy.UPGRADE_TO_V3),
        compression=cast(dbn.Compression, dbn.Compression.NONE),
    )


def _decode_chunk(decoder: Any, chunk: bytes) -> list[Any]:
    """Records decoded after feeding ``chunk``; a decoder panic becomes a DBNError."""
    try:
        with quiet_native_stderr():  # a panic's message is in the exception, not the terminal
            recs: list[Any] = decoder.write_and_decode(chunk)
    except dbn.DBNError:
        raise
    except BaseException as exc:  # pyo3 turns a Rust panic into PanicException(BaseException)
        if type(exc).__name__ != "PanicException":
            raise
        raise dbn.DBNError(str(exc)) from exc
    return recs


class _Collector:
    """Records of one file, grouped by class (definitions kept as objects)."""

    def __init__(self) -> None:
        self.raw: dict[type, list[bytes]] = {}
        self.definitions: list[Any] = []
        self.metadata: Any = None
        self.n = 0

    def add(self, recs: Iterable[Any]) -> None:
        for r in recs:
            if isinstance(r, dbn.Metadata):
                self.metadata = r
                continue
            self.n += 1
            if isinstance(r, dbn.InstrumentDefMsg):
                self.definitions.append(r)
            else:
                self.raw.setdefault(type(r), []).append(bytes(r))

    def check_complete(self, path: Path, decoder: Any) -> None:
        left = len(decoder.buffer())
        if left:
            msg = (
                f"{path}: truncated: {left} bytes after record {self.n} do not make a whole "
                "record; the file was cut, download it again"
            )
            raise FormatError(msg)

    def records(self) -> dict[type, npt.NDArray[np.void]]:
        out: dict[type, npt.NDArray[np.void]] = {}
        for cls, chunks in self.raw.items():
            dtype = np.dtype(getattr(cls, "_dtypes"))  # noqa: B009  (not in the stubs)
            out[cls] = np.frombuffer(b"".join(chunks), dtype=dtype)
        return out


def decode_file(path: Path, dbn_version: int | None = None) -> Decoded:
    """Decode a DBN file, a DBN record fragment or a legacy DBZ file, by content and name."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
        if head == _DBZ_MAGIC:
            return _decode_dbz(path)
        if ".frag" in path.name:
            return _decode_fragment(path, dbn_version)
        return _decode_dbn(path)
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise DataError(msg) from exc


_PREFIX = 8  #: "DBN", the version byte, then the metadata length (u32 LE)


def _reader_versions() -> str:
    try:
        pkg = f"databento-dbn {importlib.metadata.version('databento-dbn')}"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - installed with hftlab
        pkg = "databento-dbn"
    return f"this reader ({pkg}) reads DBN versions 1-{dbn.DBN_VERSION}"


def _check_prefix(path: Path, head: bytes) -> None:
    """FormatError unless ``head`` (the file's first bytes so far) can begin a DBN file of a
    version the decoder reads. The decoder reads a version it does not know (0) as if it
    were one it does, so the version is checked here, before it."""
    if len(head) >= 3 and not head.startswith(b"DBN"):
        raise _no_header_error(path, head)
    if len(head) < 4:
        return
    v = head[3]
    if 1 <= v <= dbn.DBN_VERSION:
        return
    if v == 0:
        todo = "there is no DBN version 0: the header is damaged, download the file again"
    else:
        todo = ("a newer databento-dbn may read it (pip install -U databento-dbn); if the file "
                "should be an older version, its header is damaged: download it again")
    msg = f"{path}: the header says DBN version {v}, but {_reader_versions()}; {todo}"
    raise FormatError(msg)


def _header_fault(head: bytes, exc: Exception) -> str:
    """What is wrong with a DBN metadata header the decoder refused, in words."""
    text = str(exc).removeprefix("decoding error: ")
    if "shorter than fixed length" in text and len(head) >= _PREFIX:
        declared = struct.unpack_from("<I", head, 4)[0]
        return f"it declares {declared} bytes of metadata, fewer than its fixed fields take"
    m = re.search(r"while reading (\w+) from metadata", text)
    if "UTF-8" in text and m:
        return f"its {m.group(1)} is not text"
    m = re.search(r"couldn't convert (.+) to dbn::enums::(\w+)", text)
    if m:
        code = m.group(1)
        if code.startswith("["):  # the little-endian bytes of a u16
            code = str(int.from_bytes(bytes(int(b) for b in re.findall(r"\d+", code)),
                                      "little"))
        what = {"Schema": "schema", "SType": "symbology type", "Compression": "compression"}
        name = what.get(m.group(2), m.group(2))
        return f"its {name} code {code} is not a DBN {name}"
    return f"the decoder cannot read it: {text}"


def _decode_dbn(path: Path) -> Decoded:
    """A whole DBN file with its metadata header."""
    decoder = _new_decoder(has_metadata=True)
    head = b""
    size = 0
    col = _Collector()
    for chunk in plain_chunks(path):
        if len(head) < _PREFIX:
            head += chunk[: _PREFIX - len(head)]
            _check_prefix(path, head)
        size += len(chunk)
        try:
            col.add(_decode_chunk(decoder, chunk))
        except dbn.DBNError as exc:
            if col.metadata is None:
                msg = (f"{path}: the DBN version {head[3]} metadata header is damaged: "
                       f"{_header_fault(head, exc)}; download the file again")
                raise FormatError(msg) from exc
            msg = f"{path}: corrupt DBN data after {col.n} records ({exc}); download it again"
            raise FormatError(msg) from exc
    md = col.metadata
    if md is None:
        if not head:
            msg = f"{path}: empty file; nothing to import"
            raise FormatError(msg)
        if not b"DBN".startswith(head[:3]):
            raise _no_header_error(path, head)
        if len(head) < _PREFIX:
            what = f"the file ends after {size} bytes, inside the {_PREFIX}-byte DBN prefix"
        else:
            declared = struct.unpack_from("<I", head, 4)[0]
            what = (f"the DBN version {head[3]} header declares {declared} bytes of metadata, "
                    f"but the file holds only {size - _PREFIX} after its {_PREFIX}-byte prefix")
        msg = f"{path}: truncated inside the metadata header: {what}; download the file again"
        raise FormatError(msg)
    col.check_complete(path, decoder)
    return Decoded(path, "dbn", str(md.dataset or ""), str(md.schema or ""),
                   Symbols.of_metadata(md), col.records(), col.definitions, col.n)


def _fragment_version(path: Path, first: bytes, override: int | None,
                      notes: list[str]) -> int:
    """The DBN version of a fragment's records (see the module docstring)."""
    m = _VERSION_IN_NAME.search(path.name)
    named = int(override) if override is not None else (int(m.group(1)) if m else None)
    by_size = None
    if len(first) >= 2 and first[1] == _RTYPE_DEFINITION:
        by_size = _DEF_SIZE_VERSION.get(first[0] * 4)
    if named is not None:
        source = "the dbn_version option" if override is not None else "its name"
        if not 1 <= named <= dbn.DBN_VERSION:
            msg = (f"{path}: {source} says DBN version {named}, but {_reader_versions()}; "
                   "name the fragment *.v1.dbn.frag, *.v2.dbn.frag or *.v3.dbn.frag by the "
                   "version it was written in")
            raise FormatError(msg)
        if by_size is not None and by_size != named:
            todo = (f"read it with dbn_version={by_size}" if override is not None
                    else f"name it *.v{by_size}.dbn.frag")
            msg = (f"{path}: read as DBN v{named} ({source}), but its definition records are "
                   f"{first[0] * 4} bytes, the size of DBN v{by_size}; {todo}")
            raise FormatError(msg)
        return named
    if by_size is not None:
        notes.append(f"{path.name}: no DBN version in the name; v{by_size}, from the size of "
                     "its definition records")
        return by_size
    notes.append(f"{path.name}: no DBN version in the name; read as v"
                 f"{_DEFAULT_FRAGMENT_VERSION} (name it *.vN.dbn.frag if it is version N)")
    return _DEFAULT_FRAGMENT_VERSION


def _decode_fragment(path: Path, dbn_version: int | None) -> Decoded:
    """DBN records without a metadata header."""
    notes: list[str] = []
    col = _Collector()
    decoder = None
    for chunk in plain_chunks(path):
        if decoder is None:
            version = _fragment_version(path, chunk[:2], dbn_version, notes)
            decoder = _new_decoder(has_metadata=False, version=version)
        try:
            col.add(_decode_chunk(decoder, chunk))
        except dbn.DBNError as exc:
            msg = (f"{path}: not DBN records after {col.n} records ({exc}); check the file "
                   "and the DBN version")
            raise FormatError(msg) from exc
    if decoder is None:
        msg = f"{path}: empty file; nothing to import"
        raise FormatError(msg)
    col.check_complete(path, decoder)
    return Decoded(path, "fragment", "", "", Symbols(), col.records(), col.definitions,
                   col.n, notes)


# --- DBZ ------------------------------------------------------------------------------------


class _VarReader:
    """Little-endian reader over the DBZ variable-length metadata."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def u32(self) -> int:
        (v,) = struct.unpack_from("<I", self.buf, self.pos)
        self.pos += 4
        return int(v)

    def cstr(self, n: int = _DBZ_SYMBOL_LEN) -> str:
        raw = self.buf[self.pos: self.pos + n]
        if len(raw) < n:
            msg = "metadata ends inside a symbol"
            raise ValueError(msg)
        self.pos += n
        return raw.split(b"\0", 1)[0].decode("ascii")

    def date(self) -> dt.date:
        v = self.u32()
        return dt.date(v // 10_000, v // 100 % 100, v % 100)

    def symbols(self) -> list[str]:
        return [self.cstr() for _ in range(self.u32())]


def _dbz_mappings(var: bytes) -> list[Mapping]:
    rd = _VarReader(var)
    rd.pos += 4 + rd.u32()  # schema definition (always empty)
    for _ in range(3):  # symbols, partial, not_found
        rd.symbols()
    out: list[Mapping] = []
    for _ in range(rd.u32()):
        native = rd.cstr()
        intervals = [(rd.date(), rd.date(), rd.cstr()) for _ in range(rd.u32())]
        out.append((native, intervals))
    return out


def _dbz_metadata(path: Path, meta: bytes, notes: list[str]) -> tuple[str, str, Symbols, int]:
    """Dataset, schema, symbology and record count of a DBZ metadata frame."""
    if len(meta) < _DBZ_FIXED_LEN or not meta.startswith(b"DBZ"):
        msg = f"{path}: not a DBZ file: the metadata frame does not start with 'DBZ'"
        raise FormatError(msg)
    dataset = meta[4:20].split(b"\0", 1)[0].decode("ascii", "replace")
    schema_no, _start, _end, _limit, count, _comp, _stype_in, stype_out = struct.unpack_from(
        "<HQQQQBBB", meta, 20)
    schema = _DBZ_SCHEMAS[schema_no] if schema_no < len(_DBZ_SCHEMAS) else ""
    try:
        var = zstandard.ZstdDecompressor().decompressobj().decompress(
            meta[_DBZ_FIXED_LEN:])
        mappings = _dbz_mappings(var)
    except (zstandard.ZstdError, ValueError, struct.error) as exc:
        notes.append(f"{path.name}: the DBZ symbol mappings cannot be read ({exc}); "
                     "instruments without a definition are named ID<instrument_id>")
        mappings = []
    return dataset, schema, Symbols(_DBZ_STYPES.get(stype_out, ""), mappings), int(count)


def _decode_dbz(path: Path) -> Decoded:
    """A legacy DBZ file: metadata in a skippable frame, then DBN v1 records."""
    with path.open("rb") as fh:
        prelude = fh.read(8)
        size = int.from_bytes(prelude[4:8], "little") if len(prelude) == 8 else -1
        meta = fh.read(size) if size >= 0 else b""
    if size < 0 or len(meta) < size:
        msg = f"{path}: truncated inside the DBZ metadata; download the file again"
        raise FormatError(msg)
    notes: list[str] = []
    dataset, schema, symbols, count = _dbz_metadata(path, meta, notes)
    decoder = _new_decoder(has_metadata=False, version=1)
    col = _Collector()
    for chunk in plain_chunks(path, 8 + size):
        try:
            col.add(_decode_chunk(decoder, chunk))
        except dbn.DBNError as exc:
            msg = f"{path}: corrupt DBZ records after {col.n} records ({exc})"
            raise FormatError(msg) from exc
    col.check_complete(path, decoder)
    if col.n != count:
        notes.append(f"{path.name}: the DBZ header counts {count} records, the file holds "
                     f"{col.n}")
    notes.append(f"{path.name}: legacy DBZ file, records read as DBN v1")
    return Decoded(path, "dbz", dataset, schema, symbols, col.records(), col.definitions,
                   col.n, notes)
