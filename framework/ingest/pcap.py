"""Classic libpcap + Ethernet/IPv4/UDP + MoldUDP64 framing for ITCH captures.

Packets are few compared with messages, so this walks packets in Python and hands the
message blocks (offsets into the file buffer) to the compiled ITCH decoder. It tracks
sequence numbers per MoldUDP64 session: gaps, gap fills and duplicates go to the report.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from framework.core.errors import FormatError

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
    bad_packets: int = 0
    missing_blocks: int = 0
    notes: list[str] = field(default_factory=list)


def _ip_udp_payload(frame: bytes, linktype: int) -> tuple[int, int, str | None]:
    """(start, end) of the UDP payload within ``frame``, or a reason it has none."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return 0, 0, "truncated Ethernet header"
        pos = 12
        etype = int.from_bytes(frame[pos : pos + 2], "big")
        while etype in ETH_VLAN:  # 802.1Q / QinQ tags: 4 bytes each
            pos += 4
            if pos + 2 > len(frame):
                return 0, 0, "truncated VLAN tag"
            etype = int.from_bytes(frame[pos : pos + 2], "big")
        ip = pos + 2
    else:  # Linux cooked capture: protocol at 14, IP at 16
        if len(frame) < 16:
            return 0, 0, "truncated Linux cooked header"
        etype = int.from_bytes(frame[14:16], "big")
        ip = 16
    if etype != ETH_IPV4:
        return 0, 0, f"not IPv4 (ethertype 0x{etype:04x})"
    if ip + 20 > len(frame) or frame[ip] >> 4 != 4:
        return 0, 0, "truncated or malformed IPv4 header"
    ihl = (frame[ip] & 0x0F) * 4
    if frame[ip + 9] != IPPROTO_UDP:
        return 0, 0, f"not UDP (IP protocol {frame[ip + 9]})"
    frag = int.from_bytes(frame[ip + 6 : ip + 8], "big")
    if frag & 0x3FFF:
        return 0, 0, "fragmented IPv4 datagram"
    udp = ip + ihl
    if ihl < 20 or udp + 8 > len(frame):
        return 0, 0, "truncated UDP header"
    ulen = int.from_bytes(frame[udp + 4 : udp + 6], "big")
    end = udp + ulen
    if ulen < 8 or end > len(frame):
        return 0, 0, "UDP length runs past the captured frame (snap length too small?)"
    return udp + 8, end, None


def frame_pcap(data: bytes | memoryview, name: str) -> PcapFrames:
    """Find every MoldUDP64 message block in a classic pcap held in ``data``."""
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
    rec = struct.Struct(bo + "IIII")
    offs: list[int] = []
    lens: list[int] = []
    caps: list[int] = []
    dups: list[bool] = []
    seqs: list[int] = []
    sess_of: list[bytes] = []
    pkt_of: list[int] = []
    skipped: dict[str, int] = {}
    sessions: dict[bytes, _Session] = {}
    out = PcapFrames(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
                     np.empty(0, np.bool_))
    pos = 24
    n = len(data)
    while pos + 16 <= n:
        sec, frac, incl, _orig = rec.unpack_from(data, pos)
        body = pos + 16
        if body + incl > n:
            out.notes.append(
                f"{name}: capture ends with a cut packet ({n - body} of {incl} bytes) at "
                f"offset {pos}; ignored"
            )
            pos = n
            break
        pos = body + incl
        out.packets += 1
        cap_ns = sec * 1_000_000_000 + frac * frac_ns
        if out.first_capture_ns is None:
            out.first_capture_ns = cap_ns
        frame = bytes(data[body : body + incl])
        start, end, why = _ip_udp_payload(frame, linktype)
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        if end - start < MOLD_HEADER:
            skipped["UDP payload too short for a MoldUDP64 header"] = (
                skipped.get("UDP payload too short for a MoldUDP64 header", 0) + 1
            )
            continue
        session = frame[start : start + 10]
        seq, count = struct.unpack_from(">QH", frame, start + 10)
        st = sessions.setdefault(session, _Session())
        if count == MOLD_HEARTBEAT:
            st.heartbeats += 1
            continue
        if count == MOLD_END_OF_SESSION:
            st.ended = True
            continue
        blocks: list[tuple[int, int]] = []
        p = start + MOLD_HEADER
        for _ in range(count):
            if p + 2 > end:
                break
            ln = int.from_bytes(frame[p : p + 2], "big")
            if p + 2 + ln > end:
                break
            blocks.append((p + 2, ln))
            p += 2 + ln
        if len(blocks) < count:
            out.bad_packets += 1
            out.missing_blocks += count - len(blocks)
        msgs = [frame[a : a + ln] for a, ln in blocks]
        is_dup = _track(st, seq, msgs)
        for k, ((a, ln), d) in enumerate(zip(blocks, is_dup, strict=True)):
            offs.append(body + a)
            lens.append(ln)
            caps.append(cap_ns)
            dups.append(d)
            seqs.append(seq + k)
            sess_of.append(session)
            pkt_of.append(out.packets - 1)
    if pos < n:
        out.notes.append(f"{name}: {n - pos} trailing bytes after the last packet ignored")
    for why, k in sorted(skipped.items()):
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
