"""The ITCH decoder never crashes on garbage and never reads out of bounds.

Random bytes, real files cut at every offset, and real files and captures with flipped bits
either decode (with rejects and notes) or fail with DataError/FormatError. Reads stay in
bounds by construction (pass 1 admits a message only if ``offset + length <= len(buf)`` and
``length`` is its type's fixed size); the invariant is asserted on every fuzz input, and a
slow test re-runs the fuzz with numba's bounds checking switched on.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.core.errors import DataError
from framework.core.events import FLAG_LAST
from framework.ingest.base import ImportOptions
from framework.ingest.itch import decode_binaryfile, import_itch
from framework.ingest.itch_nb import MSG_OK, SIZE_OF_TYPE

REPO = Path(__file__).resolve().parents[2]
HEADS = "itch50_binaryfile_real_heads"
OMI = "itch50_moldudp64_pcaps_omi"
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
DATE = dt.date(2019, 12, 30)


def check_invariants(buf: np.ndarray) -> None:
    """Decode ``buf`` as BinaryFILE and check what pass 1 promised pass 2."""
    dec, end = decode_binaryfile(buf)
    assert 0 <= end <= buf.shape[0]
    ok = dec.status == MSG_OK
    offs, lens = dec.offsets[ok], dec.lengths[ok]
    assert (offs + lens <= buf.shape[0]).all()
    assert (lens == SIZE_OF_TYPE[buf[offs]]).all()
    assert len(dec.events) <= 2 * int(ok.sum())
    assert int(np.count_nonzero(dec.events["flags"] & FLAG_LAST)) == int(ok.sum())


def import_or_clean_error(path: Path, **kw: object) -> None:
    err = ""
    try:
        res = import_itch([path], ImportOptions(**kw))  # type: ignore[arg-type]
    except DataError as exc:  # FormatError is a DataError
        err = str(exc)
    if err:  # the message names the file (or the symbol that was asked for)
        assert path.name in err or "symbol" in err
        return
    assert res.report.rows_read >= res.report.rows_rejected
    for d in res.days:
        assert (np.diff(d.events["local_ts"]) >= 0).all()


@pytest.fixture(scope="module")
def luke(shared_data: Path) -> bytes:
    return (shared_data / HEADS / "LukeFasanello_ItchParser_tests_sample.itch").read_bytes()


@pytest.fixture(scope="module")
def bekele(shared_data: Path) -> bytes:
    return (shared_data / HEADS / "B-Bekele_ITCH-Parser_data_sample.itch").read_bytes()


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    check_invariants(np.frombuffer(data, np.uint8))


@SETTINGS
@given(st.binary(min_size=1, max_size=600))
def test_random_bytes_import_or_fail_with_a_data_error(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "random.itch"
    p.write_bytes(data)
    import_or_clean_error(p, date=DATE)


@SETTINGS
@given(st.lists(st.sampled_from([ord(c) for c in "SRHYLVWKJhAFECXDUPQINB"]) | st.integers(0, 255),
                min_size=1, max_size=40), st.integers(0, 2**32))
def test_well_framed_messages_with_random_bodies_never_crash(types: list[int], seed: int) -> None:
    # valid length prefixes and types but random bodies: exercises every decode branch
    rng = np.random.default_rng(seed)
    parts = []
    for t in types:
        n = int(SIZE_OF_TYPE[t]) or int(rng.integers(1, 60))
        body = bytes([t]) + rng.integers(0, 256, n - 1, dtype=np.uint8).tobytes()
        parts.append(n.to_bytes(2, "big") + body)
    check_invariants(np.frombuffer(b"".join(parts), np.uint8))


def test_every_truncation_of_the_real_file_keeps_the_whole_messages(luke: bytes) -> None:
    buf = np.frombuffer(luke, np.uint8)
    full, _ = decode_binaryfile(buf)
    ends = (full.offsets + full.lengths).tolist()
    for k in range(len(luke) + 1):
        dec, end = decode_binaryfile(buf[:k])
        whole = sum(1 for e in ends if e <= k)
        assert dec.offsets.shape[0] == whole
        assert (dec.status == MSG_OK).all()
        assert end == (ends[whole - 1] if whole else 0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 40_873))
def test_truncated_real_file_counts_the_cut_bytes_as_damage(tmp_path: Path, bekele: bytes, k: int):
    data = bekele[: k + 1]
    p = tmp_path / "cut.itch"
    p.write_bytes(data)
    if k < 13:  # a cut inside the first message (S, 12 bytes) leaves nothing to import
        with pytest.raises(DataError, match="no valid length-prefixed message"):
            import_itch([p], ImportOptions(date=DATE))
        return
    rep = import_itch([p], ImportOptions(date=DATE)).report
    assert rep.rows_rejected == 0
    _, end = decode_binaryfile(np.frombuffer(data, np.uint8))
    cut = rep.bytes_skipped.get("bytes of a message cut by the end of the file", 0)
    assert cut == len(data) - end
    assert bool(rep.damaged) == bool(cut)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 997), st.integers(0, 1), st.integers(1, 255))
def test_framing_recovers_after_a_damaged_length_prefix(bekele: bytes, i: int, byte: int,
                                                         xor: int) -> None:
    buf = np.frombuffer(bekele, np.uint8)
    full, _ = decode_binaryfile(buf)
    starts = (full.offsets - 2).tolist()
    bad = buf.copy()
    bad[starts[i] + byte] ^= np.uint8(xor)
    dec, end = decode_binaryfile(bad)
    assert end == len(bekele)
    got = set(dec.offsets.tolist())
    lost = set(full.offsets.tolist()) - got
    assert len(lost) <= 2, sorted(lost)
    assert set(full.offsets[i + 2 :].tolist()) <= got  # every message after the break
    assert int(dec.breaks[:, 1].sum()) + int((dec.lengths + 2).sum()) == len(bekele)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 999), st.integers(1, 40))
def test_bytes_inserted_between_messages_are_skipped_exactly(bekele: bytes, i: int, k: int):
    buf = np.frombuffer(bekele, np.uint8)
    full, _ = decode_binaryfile(buf)
    at = int(full.offsets[i]) - 2
    bad = np.frombuffer(bekele[:at] + bytes(k) + bekele[at:], np.uint8)  # NULs frame nothing
    dec, _ = decode_binaryfile(bad)
    assert dec.breaks.tolist() == [[at, k]]
    assert np.array_equal(dec.lengths, full.lengths)
    assert (dec.status == MSG_OK).all()


@SETTINGS
@given(st.lists(st.integers(0, 8 * 40_874 - 1), min_size=1, max_size=8))
def test_bit_flips_in_a_real_file_never_crash_the_decoder(bekele: bytes, bits: list[int]):
    data = bytearray(bekele)
    for b in bits:
        data[b // 8] ^= 1 << (b % 8)
    check_invariants(np.frombuffer(bytes(data), np.uint8))


@SETTINGS
@given(st.lists(st.integers(0, 8 * 4096 - 1), min_size=1, max_size=8))
def test_bit_flips_in_a_real_file_import_or_fail_cleanly(
    tmp_path: Path, luke: bytes, bits: list[int]
) -> None:
    data = bytearray(luke)
    for b in bits:
        data[b // 8] ^= 1 << (b % 8)
    p = tmp_path / "flipped.itch"
    p.write_bytes(bytes(data))
    import_or_clean_error(p, date=DATE)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["Nasdaq.Equities.TotalView.Itch.v5.0/Multiple.Packets.pcap",
                        "Nasdaq.Equities.TotalView.Itch.v5.0.20230822/OrderReplace.pcap",
                        "Nasdaq.Equities.TotalView.Itch.v5.0.20230822/CrossTrade.pcap"]),
       st.lists(st.integers(0, 10**6), min_size=1, max_size=6), st.integers(0, 10**6))
def test_bit_flips_and_cuts_in_real_pcaps_never_crash(
    tmp_path: Path, shared_data: Path, name: str, bits: list[int], cut: int
) -> None:
    data = bytearray((shared_data / OMI / name).read_bytes())
    for bit in (b % (8 * len(data)) for b in bits):
        data[bit // 8] ^= 1 << (bit % 8)
    data = data[: 24 + cut % (len(data) - 23)]
    p = tmp_path / "flipped.pcap"
    p.write_bytes(bytes(data))
    import_or_clean_error(p, date=dt.date(2023, 8, 22), extra={"pcap": True})


_BOUNDSCHECK_SCRIPT = textwrap.dedent("""
    import datetime as dt, sys, tempfile
    from pathlib import Path
    import numpy as np
    from framework.core.errors import DataError
    from framework.ingest.base import ImportOptions
    from framework.ingest.itch import decode_binaryfile, import_itch
    data = Path(sys.argv[1])
    rng = np.random.default_rng(7)
    luke = (data / "itch50_binaryfile_real_heads/LukeFasanello_ItchParser_tests_sample.itch")
    raw = np.frombuffer(luke.read_bytes(), np.uint8)
    for k in range(raw.shape[0] + 1):
        decode_binaryfile(raw[:k])
    for _ in range(300):
        decode_binaryfile(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8))
        flipped = raw.copy()
        flipped[rng.integers(0, raw.shape[0], 4)] ^= np.uint8(1 << int(rng.integers(0, 8)))
        decode_binaryfile(flipped)
    tmp = Path(tempfile.mkdtemp())
    for pcap in sorted((data / "itch50_moldudp64_pcaps_omi").glob("Nasdaq.Equities*/*.pcap")):
        b = bytearray(pcap.read_bytes())
        for _ in range(20):
            c = bytearray(b)
            for i in rng.integers(24, len(c), 3):
                c[int(i)] ^= 1 << int(rng.integers(0, 8))
            (tmp / "f.pcap").write_bytes(bytes(c))
            try:
                import_itch([tmp / "f.pcap"], ImportOptions(date=dt.date(2023, 8, 22)))
            except DataError:
                pass
    print("OK")
""")


@pytest.mark.slow
def test_fuzz_under_numba_bounds_checking_reads_nothing_out_of_bounds(
    shared_data: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", HFTLAB_NUMBA_CACHE=str(tmp_path / "nbcache"))
    proc = subprocess.run(
        [sys.executable, "-c", _BOUNDSCHECK_SCRIPT, str(shared_data)], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")


def _reference(ops: list[tuple[str, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """A dict-based model of the order book semantics: (kind, order id, side, price, qty)."""
    live: dict[int, list[int]] = {}
    out = []
    for op, ref, new, qty in ops:
        if op == "A":
            if ref in live:
                continue
            live[ref] = [1 if qty % 2 else -1, 100 + ref % 7, qty]
            out.append((1, ref, live[ref][0], live[ref][1], qty))
        elif ref not in live:
            continue
        elif op in "EX":
            side, price, rem = live[ref]
            if qty > rem:
                continue
            out.append((5 if op == "E" else 3, ref, side, price, qty))
            if qty == rem:
                del live[ref]
            else:
                live[ref][2] -= qty
        elif op == "D":
            side, price, rem = live.pop(ref)
            out.append((4, ref, side, price, rem))
        elif op == "U":
            if new != ref and new in live:
                continue
            side, price, rem = live.pop(ref)
            out.append((4, ref, side, price, rem))
            live[new] = [side, 200 + new % 5, qty]
            out.append((1, new, side, 200 + new % 5, qty))
    return out


def _itch(ops: list[tuple[str, int, int, int]]) -> np.ndarray:
    import struct

    parts = []
    for op, ref, new, qty in ops:
        h = op.encode() + struct.pack(">HH", 1, 0) + (0).to_bytes(6, "big")
        if op == "A":
            side = b"B" if qty % 2 else b"S"
            m = h + struct.pack(">Q", ref) + side + struct.pack(">I", qty) + b"TEST    " + (
                struct.pack(">I", 100 + ref % 7))
        elif op == "E":
            m = h + struct.pack(">QIQ", ref, qty, 0)
        elif op == "X":
            m = h + struct.pack(">QI", ref, qty)
        elif op == "D":
            m = h + struct.pack(">Q", ref)
        else:
            m = h + struct.pack(">QQII", ref, new, qty, 200 + new % 5)
        parts.append(struct.pack(">H", len(m)) + m)
    return np.frombuffer(b"".join(parts), np.uint8)


_OP = st.tuples(st.sampled_from("AAAEXDU"), st.integers(0, 40), st.integers(0, 40),
                st.integers(1, 5))


@SETTINGS
@given(st.lists(_OP, max_size=300))
def test_order_table_agrees_with_a_dict_model(ops: list[tuple[str, int, int, int]]) -> None:
    dec, _ = decode_binaryfile(_itch(ops))
    ev = dec.events
    got = list(zip(ev["kind"].tolist(), ev["order_id"].tolist(), ev["side"].tolist(),
                   ev["price"].tolist(), ev["qty"].tolist(), strict=True))
    assert got == _reference(ops)


def test_order_table_grows_and_deletes_correctly_past_its_initial_size() -> None:
    rng = np.random.default_rng(3)
    ids = rng.permutation(200_000).tolist()  # > 32,768 live: the table grows several times
    ops = [("A", i * 4096 + 7, 0, 1 + i % 9) for i in ids]  # strided ids stress the hash
    ops += [("D", i * 4096 + 7, 0, 0) for i in rng.permutation(ids).tolist()]
    dec, _ = decode_binaryfile(_itch(ops))
    assert (dec.status == MSG_OK).all()
    assert len(dec.events) == 400_000
