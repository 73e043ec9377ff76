"""Classic libpcap + Ethernet/IPv4/UDP + MoldUDP64 framing for ITCH captures.

Packets are few compared with messages, so this walks packets in Python and hands the
message blocks (offsets into the file buffer) to the compiled ITCH decoder. It tracks
sequence numbers per MoldUDP64 session: gaps, gap fills and duplicates go to the report.

Damage is found where the capture allows: a record header that is not plausible (the walk
resynchronises at the next offset where two records in a row are), IPv4 and UDP checksums
(verified when most of the capture's match, since offloaded or rewritten captures carry
wrong ones everywhere), and MoldUDP64 blocks that do not frame ITCH messages (the packet's
end is the next resynchronisation point).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from framework.core.errors import FormatError
from framework.ingest.itch_nb import SIZE_OF_TYPE

PCAP_MAGICS: dict[bytes, tuple[str, int]] = {
    # magic as it appears on disk -> (byte order, fraction-of-second divisor to ns)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # microsecond, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1_000),  # microsecond, big-endian
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanosecond, little-endian
    b"\xa1\xb2\x3c\x4d": (">", 1),  # nanosecond, big-endian
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
ETH_IPV4 = 0x0800
ETH_VLAN = (0x8100, 0x88A8, 0x9100)
IPPROTO_UDP = 17
MOLD_HEADER = 20
MOLD_HEARTBEAT = 0
MOLD_END_OF_SESSION = 0xFFFF
_RECENT_PACKETS = 4096  # packets per session kept to tell duplicates from reused numbers


def is_pcap(head: bytes) -> bool:
    """True if ``head`` starts with a classic libpcap magic number (either byte order)."""
    return head[:4] in PCAP_MAGICS


@dataclass
class _Session:
    expected: int | None = None
    missing: list[list[int]] = field(default_factory=list)  # [first, end) ranges not yet seen
    recent: deque[tuple[int, list[bytes]]] = field(
        default_factory=lambda: deque(maxlen=_RECENT_PACKETS)
    )
    gaps: int = 0
    gap_messages: int = 0
    filled: int = 0
    duplicates: int = 0
    reused: int = 0
    heartbeats: int = 0
    ended: bool = False


@dataclass
class PcapFrames:
    """Message blocks found in a capture, as offsets into the capture's bytes."""

    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    capture_ns: npt.NDArray[np.int64]  #: capture time of each message's packet
    duplicate: npt.NDArray[np.bool_]  #: a byte-identical repeat of a message already seen
    sequence: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    session: list[bytes] = field(default_factory=list)  #: MoldUDP64 session of each message
    packet: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    packets: int = 0
    first_capture_ns: int | None = None
    #: (reason, bytes, offset of the first such byte) of what was not framed: damage has an
    #: offset; packets that are just not the feed (ARP, TCP, ...) have None
    skipped: list[tuple[str, int, int | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int, at: int | None) -> None:
        for k, (r, m, a) in enumerate(self.skipped):
            if r == reason:
                self.skipped[k] = (r, m + n, a)
                return
        self.skipped.append((reason, n, at))


@dataclass
class _Frame:
    """One packet record's Ethernet/IPv4/UDP parse."""

    pos: int  #: offset of the record header in the capture
    body: int  #: offset of the frame
    data: bytes
    cap_ns: int
    start: int = 0  #: UDP payload [start, end) within ``data``
    end: int = 0
    why: str | None = None  #: why it carries no UDP payload
    ip_ok: bool | None = None  #: IPv4 header checksum matches (None: not IPv4)
    udp_ok: bool | None = None  #: UDP checksum matches (None: not UDP or no checksum)


def _ones_sum(b: bytes) -> int:
    """The 16-bit ones' complement sum of the Internet checksum (RFC 1071)."""
    if len(b) % 2:
        b += b"\0"
    s = int(np.frombuffer(b, ">u2").sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _ip_udp_payload(fr: _Frame, linktype: int) -> None:
    """Fill ``fr.start/end`` with the UDP payload, or ``fr.why`` it has none; checksums too."""
    frame = fr.data
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            fr.why = "truncated Ethernet header"
            return
        pos = 12
        etype = int.from_bytes(frame[pos : pos + 2], "big")
        while etype in ETH_VLAN:  # 802.1Q / QinQ tags: 4 bytes each
            pos += 4
            if pos + 2 > len(frame):
                fr.why = "truncated VLAN tag"
                return
            etype = int.from_bytes(frame[pos : pos + 2], "big")
        ip = pos + 2
    else:  # Linux cooked capture: protocol at 14, IP at 16
        if len(frame) < 16:
            fr.why = "truncated Linux cooked header"
            return
        etype = int.from_bytes(frame[14:16], "big")
        ip = 16
    if etype != ETH_IPV4:
        fr.why = f"not IPv4 (ethertype 0x{etype:04x})"
        return
    if ip + 20 > len(frame) or frame[ip] >> 4 != 4:
        fr.why = "truncated or malformed IPv4 header"
        return
    ihl = (frame[ip] & 0x0F) * 4
    if ihl >= 20 and ip + ihl <= len(frame):
        fr.ip_ok = _ones_sum(frame[ip : ip + ihl]) == 0xFFFF
    if frame[ip + 9] != IPPROTO_UDP:
        fr.why = f"not UDP (IP protocol {frame[ip + 9]})"
        return
    frag = int.from_bytes(frame[ip + 6 : ip + 8], "big")
    if frag & 0x3FFF:
        fr.why = "fragmented IPv4 datagram"
        return
    udp = ip + ihl
    if ihl < 20 or udp + 8 > len(frame):
        fr.why = "truncated UDP header"
        return
    ulen = int.from_bytes(frame[udp + 4 : udp + 6], "big")
    end = udp + ulen
    if ulen < 8 or end > len(frame):
        fr.why = "UDP length runs past the captured frame (snap length too small?)"
        return
    if int.from_bytes(frame[udp + 6 : udp + 8], "big"):
        pseudo = frame[ip + 12 : ip + 20] + bytes([0, IPPROTO_UDP]) + frame[udp + 4 : udp + 6]
        fr.udp_ok = _ones_sum(pseudo + frame[udp:end]) == 0xFFFF
    fr.start, fr.end = udp + 8, end


_FRAC_LIMIT = {1_000: 1_000_000, 1: 1_000_000_000}  # fraction-of-second bound per resolution
_MAX_FRAME = 1 << 18
_DAY_S = 86_400


class _Records:
    """Walks a capture's packet records; where a record header is damaged, resynchronises at
    the next offset where two records in a row are plausible (the capture's own framing)."""

    def __init__(self, data: bytes | memoryview, bo: str, frac_ns: int, out: PcapFrames):
        self.data = data
        self.n = len(data)
        self.rec = struct.Struct(bo + "IIII")
        self.bo = bo
        self.frac_limit = _FRAC_LIMIT[frac_ns]
        snap = struct.unpack_from(bo + "I", data, 16)[0]
        self.snap = snap if 14 <= snap <= _MAX_FRAME else _MAX_FRAME
        self.out = out

    def size_at(self, pos: int, prev_sec: int | None) -> int:
        """The frame size of a plausible record at ``pos``; -2 if plausible but cut by the
        end of the capture; -1 if the bytes there are no record header."""
        if pos + 16 > self.n:
            return -2
        sec, frac, incl, orig = self.rec.unpack_from(self.data, pos)
        if frac >= self.frac_limit or not 14 <= incl <= self.snap or not incl <= orig <= _MAX_FRAME:
            return -1
        if prev_sec is not None and abs(sec - prev_sec) > _DAY_S:
            return -1
        return incl if pos + 16 + incl <= self.n else -2

    def resync(self, pos: int, prev_sec: int | None) -> int:
        b = np.frombuffer(self.data, np.uint8)
        window = 1 << 16
        for lo in range(pos + 1, self.n - 15, window):
            idx = np.arange(lo, min(lo + window, self.n - 15))
            incl = self._u32(b, idx + 8)
            frac = self._u32(b, idx + 4)
            orig = self._u32(b, idx + 12)
            cand = (frac < self.frac_limit) & (incl >= 14) & (incl <= self.snap) & (orig >= incl)
            for c in idx[cand].tolist():
                k = self.size_at(c, prev_sec)
                if k == -1:
                    continue
                if k == -2 or c + 16 + k == self.n or self.size_at(c + 16 + k, None) != -1:
                    return c
        return self.n

    def _u32(self, b: npt.NDArray[np.uint8], at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        parts = [b[at + k].astype(np.int64) for k in range(4)]
        if self.bo == ">":
            parts.reverse()
        return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        """(record offset, frame offset, frame size, capture time in ns units of the file)."""
        pos = 24
        prev_sec: int | None = None
        while pos < self.n:
            k = self.size_at(pos, prev_sec)
            if k == -2:
                self.out.skip("bytes of a packet record cut by the end of the capture",
                              self.n - pos, pos)
                return
            if k < 0:
                nxt = self.resync(pos, prev_sec)
                self.out.skip("bytes that frame no pcap packet record (a damaged record "
                              "header; resynchronised at the next plausible record)",
                              nxt - pos, pos)
                pos = nxt
                continue
            sec, frac, _, _ = self.rec.unpack_from(self.data, pos)
            prev_sec = sec
            yield pos, pos + 16, k, sec * 1_000_000_000 + frac * (1_000_000_000 // self.frac_limit)
            pos += 16 + k


def frame_pcap(data: bytes | memoryview, name: str) -> PcapFrames:
    """Find every MoldUDP64 message block in a classic pcap held in ``data``.

    Damaged input (record headers, IPv4/UDP checksums where the capture computes them,
    MoldUDP64 blocks that do not frame) is skipped and listed in ``PcapFrames.skipped``
    with its offset; packets that are simply not the feed are listed without one.
    """
    if len(data) >= 4 and bytes(data[:4]) == PCAPNG_MAGIC:
        msg = f"{name}: pcapng is not supported; convert it with `editcap -F pcap IN OUT`"
        raise FormatError(msg)
    if len(data) < 24 or bytes(data[:4]) not in PCAP_MAGICS:
        msg = f"{name}: not a libpcap capture (no pcap magic number); pass it without --pcap"
        raise FormatError(msg)
    bo, frac_ns = PCAP_MAGICS[bytes(data[:4])]
    linktype = struct.unpack_from(bo + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
        msg = f"{name}: pcap link type {linktype} is not Ethernet (1) or Linux cooked (113)"
        raise FormatError(msg)
    out = PcapFrames(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
                     np.empty(0, np.bool_))
    frames: list[_Frame] = []
    for pos, body, incl, cap_ns in _Records(data, bo, frac_ns, out):
        out.packets += 1
        if out.first_capture_ns is None:
            out.first_capture_ns = cap_ns
        fr = _Frame(pos, body, bytes(data[body : body + incl]), cap_ns)
        _ip_udp_payload(fr, linktype)
        frames.append(fr)
    verify_ip = _mostly([f.ip_ok for f in frames])
    verify_udp = _mostly([f.udp_ok for f in frames])
    if frames and not verify_ip and any(f.ip_ok is not None for f in frames):
        out.notes.append(f"{name}: IPv4 checksums not verified (most of this capture's do not "
                         "match: offloaded or rewritten)")
    offs: list[int] = []
    lens: list[int] = []
    caps: list[int] = []
    dups: list[bool] = []
    seqs: list[int] = []
    sess_of: list[bytes] = []
    pkt_of: list[int] = []
    sessions: dict[bytes, _Session] = {}
    other: dict[str, int] = {}  # packets that are not the feed, by why
    for k, fr in enumerate(frames):
        size = 16 + len(fr.data)
        if verify_ip and fr.ip_ok is False:
            out.skip("bytes of packets whose IPv4 header checksum does not match (damaged)",
                     size, fr.pos)
            continue
        if fr.why is not None:
            out.skip("packets that are not MoldUDP64 over UDP", size, None)
            other[fr.why] = other.get(fr.why, 0) + 1
            continue
        if verify_udp and fr.udp_ok is False:
            out.skip("bytes of packets whose UDP checksum does not match (damaged payload)",
                     size, fr.pos)
            continue
        if fr.end - fr.start < MOLD_HEADER:
            out.skip("packets that are not MoldUDP64 over UDP", size, None)
            why = "UDP payload too short for a MoldUDP64 header"
            other[why] = other.get(why, 0) + 1
            continue
        frame, start, end = fr.data, fr.start, fr.end
        session = frame[start : start + 10]
        seq, count = struct.unpack_from(">QH", frame, start + 10)
        st = sessions.setdefault(session, _Session())
        p = start + MOLD_HEADER
        blocks: list[tuple[int, int]] = []
        bad = None
        if count == MOLD_HEARTBEAT:
            st.heartbeats += 1
        elif count == MOLD_END_OF_SESSION:
            st.ended = True
        else:
            for _ in range(count):
                if p + 2 > end:
                    bad = "the point where the header counts more blocks than remain"
                    break
                ln = int.from_bytes(frame[p : p + 2], "big")
                if p + 2 + ln > end:
                    bad = "a message block that runs past the packet"
                    break
                if ln == 0 or SIZE_OF_TYPE[frame[p + 2]] != ln:
                    bad = "a block that is no ITCH 5.0 message (unknown type or length)"
                    break
                blocks.append((p + 2, ln))
                p += 2 + ln
        if bad is None and p != end:
            bad = "bytes after the last message block the header counts"
        if bad is not None:
            out.skip(f"bytes of MoldUDP64 packets from {bad} to the packet's end", end - p,
                     fr.body + p)
        msgs = [frame[a : a + ln] for a, ln in blocks]
        is_dup = _track(st, seq, msgs) if msgs else []
        for j, ((a, ln), d) in enumerate(zip(blocks, is_dup, strict=True)):
            offs.append(fr.body + a)
            lens.append(ln)
            caps.append(fr.cap_ns)
            dups.append(d)
            seqs.append(seq + j)
            sess_of.append(session)
            pkt_of.append(k)
    for why, k in sorted(other.items()):
        out.notes.append(f"{name}: {k} packet(s) skipped: {why}")
    for sess, st in sessions.items():
        out.notes.extend(_session_notes(name, sess, st))
    out.offsets = np.asarray(offs, np.int64)
    out.lengths = np.asarray(lens, np.int64)
    out.capture_ns = np.asarray(caps, np.int64)
    out.duplicate = np.asarray(dups, np.bool_)
    out.sequence = np.asarray(seqs, np.uint64)
    out.session = sess_of
    out.packet = np.asarray(pkt_of, np.int64)
    return out


def _mostly(checks: list[bool | None]) -> bool:
    """A capture computes its checksums when most of those it has match."""
    known = [c for c in checks if c is not None]
    return bool(known) and 2 * sum(known) >= len(known)


def _track(st: _Session, seq: int, msgs: list[bytes]) -> list[bool]:
    """Update a session's sequence state; mark byte-identical repeats as duplicates."""
    count = len(msgs)
    dup = [False] * count
    if st.expected is None:
        st.expected = seq
    if seq > st.expected:
        st.gaps += 1
        st.gap_messages += seq - st.expected
        st.missing.append([st.expected, seq])
    for k in range(count):
        s = seq + k
        if s < st.expected and not _take_missing(st, s):
            earlier = _recent_message(st, s)
            if earlier is None or earlier == msgs[k]:
                dup[k] = True  # too old to compare, or an exact repeat: a retransmission
                st.duplicates += 1
            else:
                st.reused += 1  # same number, other bytes: re-numbered capture; keep it
        elif s < st.expected:
            st.filled += 1
    st.expected = max(st.expected, seq + count)
    st.recent.append((seq, msgs))
    return dup


def _take_missing(st: _Session, s: int) -> bool:
    for r in st.missing:
        if r[0] <= s < r[1]:
            if s == r[0]:
                r[0] += 1
            elif s == r[1] - 1:
                r[1] -= 1
            else:
                st.missing.append([s + 1, r[1]])
                r[1] = s
            st.missing = [x for x in st.missing if x[0] < x[1]]
            return True
    return False


def _recent_message(st: _Session, s: int) -> bytes | None:
    for seq, msgs in reversed(st.recent):
        if seq <= s < seq + len(msgs):
            return msgs[s - seq]
    return None


def _session_notes(name: str, sess: bytes, st: _Session) -> list[str]:
    text = sess.decode("latin-1")
    label = text.strip() if text.isprintable() and text.strip() else f"0x{sess.hex()}"
    head = f"{name}: MoldUDP64 session {label!r}"
    notes = []
    remaining = sum(r[1] - r[0] for r in st.missing)
    if st.gaps:
        ranges = ", ".join(f"{a}..{b - 1}" for a, b in st.missing[:5])
        more = f" (+{len(st.missing) - 5} more ranges)" if len(st.missing) > 5 else ""
        notes.append(
            f"{head}: {st.gaps} sequence gap(s) of {st.gap_messages} message(s); "
            f"{st.filled} filled later, {remaining} still missing"
            + (f": {ranges}{more}" if remaining else "")
        )
    if st.duplicates:
        notes.append(f"{head}: {st.duplicates} duplicate message(s) dropped")
    if st.reused:
        notes.append(
            f"{head}: {st.reused} message(s) reuse an earlier sequence number with different "
            "bytes (re-numbered or zeroed capture); kept in capture order"
        )
    if st.heartbeats:
        notes.append(f"{head}: {st.heartbeats} heartbeat packet(s)")
    if st.ended:
        notes.append(f"{head}: end-of-session packet seen")
    return notes
