"""FIX 4.4 session layer, without sockets: logon, heartbeats and test requests, sequence
numbers persisted per session, ResendRequest answered with resent messages or
SequenceReset-GapFill, gap detection, session-level Reject, logout.

:class:`FixSession` is the same state machine for the venue's acceptor and the gateway's
initiator. The I/O layer feeds it bytes (:meth:`FixSession.receive`), calls
:meth:`FixSession.tick` on a timer, writes :meth:`FixSession.take_output` to the socket and
closes the connection when :attr:`FixSession.closed` is set. Application messages come out
of ``receive`` exactly once and in sequence order:

* a message above the expected sequence number opens a gap: one ResendRequest asks for
  everything from the expected number on, and nothing above the gap is applied until the
  resend has filled it (the resend brings those messages again);
* a message below it is a duplicate if PossDupFlag is set (dropped), else the session is
  broken (Logout, as the FIX spec says);
* a resend of our own messages sends application messages again with PossDupFlag and
  OrigSendingTime, and replaces admin messages (and any we no longer hold) with
  SequenceReset-GapFill.

Sequence numbers and sent messages live in a :class:`SeqStore` directory (``seqs`` holds
``next_out next_in``, rewritten by rename; ``sent.log`` holds length-prefixed records),
so a restarted process resumes the session where it was.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from live.wire import fix
from live.wire.fix import FixMessage
from live.wire.frames import BadFrame

log = logging.getLogger("hftlab.live.fix")

#: session-level reject reasons (tag 373)
REJ_REQUIRED_TAG_MISSING = 1
REJ_VALUE_INCORRECT = 5
REJ_INCORRECT_FORMAT = 6
REJ_INVALID_MSG_TYPE = 11


class SeqStore:
    """Next outgoing and incoming sequence numbers and the sent messages of one session,
    in ``path`` (memory only when ``path`` is None)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.next_out = 1
        self.next_in = 1
        self._sent: dict[int, bytes] = {}
        if path is None:
            return
        path.mkdir(parents=True, exist_ok=True)
        seqs = path / "seqs"
        if seqs.exists():
            parts = seqs.read_text().split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                self.next_out, self.next_in = int(parts[0]), int(parts[1])
            else:
                log.error("FIX store %s: seqs file %r is unreadable; starting at 1", path,
                          seqs.read_text()[:40])
        log_path = path / "sent.log"
        if log_path.exists():
            self._load(log_path.read_bytes())
        self._log = log_path.open("ab")

    def _load(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            nl = data.find(b"\n", i)
            head = data[i:nl].split() if nl >= 0 else []
            if len(head) != 2 or not all(h.isdigit() for h in head):
                log.error("FIX store %s: sent.log is cut at byte %d (a write was "
                          "interrupted); the rest is ignored", self.path, i)
                return
            seq, n = int(head[0]), int(head[1])
            if nl + 1 + n + 1 > len(data):
                log.error("FIX store %s: sent.log's last record is incomplete", self.path)
                return
            self._sent[seq] = data[nl + 1:nl + 1 + n]
            i = nl + 1 + n + 1

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path / "seqs.tmp"
        tmp.write_text(f"{self.next_out} {self.next_in}\n")
        os.replace(tmp, self.path / "seqs")

    def add_sent(self, seq: int, raw: bytes) -> None:
        self._sent[seq] = raw
        if self.path is not None:
            self._log.write(b"%d %d\n" % (seq, len(raw)) + raw + b"\n")
            self._log.flush()

    def sent(self, seq: int) -> bytes | None:
        return self._sent.get(seq)

    def reset(self) -> None:
        self.next_out = self.next_in = 1
        self._sent.clear()
        if self.path is not None:
            self._log.close()
            self._log = (self.path / "sent.log").open("wb")
        self.save()

    def close(self) -> None:
        if self.path is not None:
            self._log.close()


class FixSession:
    """One FIX 4.4 session, initiator or acceptor (see the module docstring)."""

    def __init__(self, sender: str, target: str, store: SeqStore, *,
                 heartbeat_s: int = 30, clock: Callable[[], int]) -> None:
        self.sender, self.target = sender, target
        self._sender_b, self._target_b = sender.encode(), target.encode()
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.clock = clock  #: ns since the epoch
        self.reader = fix.FixReader()
        self.logged_on = False
        self.closed: str | None = None  #: why the connection must end, once it must
        self.logon_fields: list[tuple[int, bytes | str | int]] = []  #: extra Logon tags
        self.peer_logon: FixMessage | None = None
        self.bad_frames = 0
        self.received: Counter[bytes] = Counter()  #: messages taken in, by MsgType
        self._out: list[bytes] = []
        self._last_in = self._last_out = clock()
        self._test_pending = False
        self._resend_until = 0  #: a gap is being filled up to this sequence number
        self._logout_sent = False
        #: acceptor: decides a Logon; returns an error text to refuse it
        self.accept_logon: Callable[[FixMessage], str | None] | None = None

    def new_connection(self) -> None:
        """A new connection of this session: logged off, nothing pending, same sequence
        numbers and stored messages."""
        self.reader = fix.FixReader()
        self.logged_on = False
        self.closed = None
        self._out = []
        self._logout_sent = False
        self._test_pending = False
        self._resend_until = 0
        self._last_in = self._last_out = self.clock()

    # --- output -----------------------------------------------------------------------------
    def take_output(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def send(self, msg_type: bytes, fields: list[tuple[int, bytes | str | int | float]]) -> int:
        """Send (and store) a message; returns its sequence number."""
        seq = self.store.next_out
        raw = fix.encode(msg_type, fields, seq=seq, sender=self._sender_b,
                         target=self._target_b, sending_time=fix.utc_timestamp(self.clock()))
        self.store.next_out = seq + 1
        self.store.add_sent(seq, raw)
        self.store.save()
        self._out.append(raw)
        self._last_out = self.clock()
        return seq

    def logon(self, *, reset: bool = False) -> None:
        """Initiator: send Logon."""
        if reset:
            self.store.reset()
        fields: list[tuple[int, bytes | str | int | float]] = [
            (fix.T_ENCRYPT_METHOD, 0), (fix.T_HEART_BT_INT, self.heartbeat_s)]
        if reset:
            fields.append((fix.T_RESET_SEQ_NUM, "Y"))
        fields += self.logon_fields
        self.send(fix.LOGON, fields)

    def logout(self, text: str = "") -> None:
        if not self._logout_sent:
            self._logout_sent = True
            self.send(fix.LOGOUT, [(fix.T_TEXT, text)] if text else [])

    def reject(self, ref: FixMessage, reason: int, text: str, tag: int = 0) -> None:
        """Session-level Reject of a message that framed well but is not acceptable."""
        fields: list[tuple[int, bytes | str | int | float]] = [(fix.T_REF_SEQ_NUM, ref.seq)]
        if tag:
            fields.append((fix.T_REF_TAG_ID, tag))
        fields += [(fix.T_REF_MSG_TYPE, ref.msg_type), (fix.T_SESSION_REJECT_REASON, reason),
                   (fix.T_TEXT, text)]
        log.warning("FIX %s->%s: reject of %s seq %d: %s", self.sender, self.target,
                    ref.msg_type, ref.seq, text)
        self.send(fix.REJECT, fields)

    # --- input ------------------------------------------------------------------------------
    def receive(self, data: bytes) -> list[FixMessage]:
        """Bytes from the peer in; application messages to apply out (each exactly once)."""
        app: list[FixMessage] = []
        for item in self.reader.feed(data):
            if self.closed:
                break
            if isinstance(item, BadFrame):
                self.bad_frames += 1
                log.warning("FIX %s<-%s: garbled message ignored: %s", self.sender,
                            self.target, item.reason)
                continue
            self._last_in = self.clock()
            self._test_pending = False
            self.received[item.msg_type] += 1
            m = self._one(item)
            if m is not None:
                app.append(m)
        return app

    def _one(self, m: FixMessage) -> FixMessage | None:
        try:
            seq = m.seq
        except fix.FixError as e:
            self.logout(f"message without a usable MsgSeqNum: {e}")
            self.closed = "no MsgSeqNum"
            return None
        if m.get(fix.T_SENDER) != self._target_b or m.get(fix.T_TARGET) != self._sender_b:
            if not self.logged_on:
                self.closed = "CompIDs do not match"
                return None
            self.reject(m, REJ_VALUE_INCORRECT, "CompID problem")
            self.logout("CompID problem")
            self.closed = "CompIDs do not match"
            return None
        t = m.msg_type
        if not self.logged_on:
            if t != fix.LOGON:
                self.closed = f"first message is {t!r}, not Logon"
                return None
            return self._logon(m, seq)
        if t == fix.SEQUENCE_RESET and m.get(fix.T_GAP_FILL) != b"Y":
            self._seq_reset(m)
            return None
        expected = self.store.next_in
        if seq < expected:
            if m.poss_dup:
                return None  # a duplicate of something applied already
            self.logout(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            self.closed = "sequence number too low"
            return None
        if seq > expected:
            if self._resend_until < expected:
                self._request_resend(expected, seq)
            self._resend_until = max(self._resend_until, seq)
            if t == fix.LOGOUT:
                self.closed = "peer logged out"
            return None
        self.store.next_in = seq + 1
        self.store.save()
        return self._admin(m)

    @property
    def filling_gap(self) -> bool:
        """A resend the session asked for has not come in whole yet (the peer's messages
        up to the highest sequence number seen are not all applied)."""
        return self._resend_until >= self.store.next_in

    def _request_resend(self, begin: int, seen: int) -> None:
        log.info("FIX %s<-%s: gap %d..%d, asking for a resend", self.sender, self.target,
                 begin, seen - 1)
        self.send(fix.RESEND_REQUEST, [(fix.T_BEGIN_SEQ_NO, begin), (fix.T_END_SEQ_NO, 0)])

    def _logon(self, m: FixMessage, seq: int) -> FixMessage | None:
        acceptor = self.accept_logon is not None
        if acceptor:
            assert self.accept_logon is not None
            err = self.accept_logon(m)
            if err is None:
                hb = m.get(fix.T_HEART_BT_INT)
                if hb is None or not hb.isdigit():
                    err = "Logon needs a HeartBtInt (108)"
                else:
                    self.heartbeat_s = int(hb)
            if err is not None:
                log.warning("FIX %s<-%s: Logon refused: %s", self.sender, self.target, err)
                self.logout(err)
                self.closed = err
                return None
        if m.get(fix.T_RESET_SEQ_NUM) == b"Y" and acceptor:
            self.store.reset()
        expected = self.store.next_in
        if seq < expected:
            self.logout(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            self.closed = "sequence number too low at logon"
            return None
        self.logged_on = True
        self.peer_logon = m
        if acceptor:
            fields: list[tuple[int, bytes | str | int | float]] = [
                (fix.T_ENCRYPT_METHOD, 0), (fix.T_HEART_BT_INT, self.heartbeat_s)]
            if m.get(fix.T_RESET_SEQ_NUM) == b"Y":
                fields.append((fix.T_RESET_SEQ_NUM, "Y"))
            self.send(fix.LOGON, fields)
        if seq > expected:
            self._request_resend(expected, seq)
            self._resend_until = seq
        else:
            self.store.next_in = seq + 1
            self.store.save()
        log.info("FIX %s<-%s: logged on (heartbeat %d s)", self.sender, self.target,
                 self.heartbeat_s)
        return None

    def _seq_reset(self, m: FixMessage) -> None:
        new = m.get_int(fix.T_NEW_SEQ_NO, 0)
        if new < self.store.next_in:
            self.reject(m, REJ_VALUE_INCORRECT, f"NewSeqNo {new} is below the expected "
                        f"{self.store.next_in}", fix.T_NEW_SEQ_NO)
            return
        self.store.next_in = new
        self.store.save()

    def _admin(self, m: FixMessage) -> FixMessage | None:
        t = m.msg_type
        if t == fix.HEARTBEAT:
            return None
        if t == fix.TEST_REQUEST:
            self.send(fix.HEARTBEAT, [(fix.T_TEST_REQ_ID, m.get(fix.T_TEST_REQ_ID) or b"")])
            return None
        if t == fix.RESEND_REQUEST:
            self._resend(m)
            return None
        if t == fix.SEQUENCE_RESET:  # gap fill in sequence
            new = m.get_int(fix.T_NEW_SEQ_NO, 0)
            if new > self.store.next_in:
                self.store.next_in = new
                self.store.save()
            return None
        if t == fix.LOGOUT:
            self.logout()
            self.closed = "peer logged out"
            return None
        if t == fix.REJECT:
            log.warning("FIX %s<-%s: our message %s was rejected: %s", self.sender,
                        self.target, m.get_str(fix.T_REF_SEQ_NUM), m.get_str(fix.T_TEXT))
            return None
        if t == fix.LOGON:
            self.reject(m, REJ_VALUE_INCORRECT, "Logon on a logged-on session")
            return None
        return m

    def _resend(self, m: FixMessage) -> None:
        try:
            begin = m.get_int(fix.T_BEGIN_SEQ_NO)
            end = m.get_int(fix.T_END_SEQ_NO)
        except fix.FixError as e:
            self.reject(m, REJ_REQUIRED_TAG_MISSING, str(e))
            return
        last = self.store.next_out - 1
        if end == 0 or end > last:
            end = last
        log.info("FIX %s->%s: resending %d..%d", self.sender, self.target, begin, end)
        gap_from = 0
        now = fix.utc_timestamp(self.clock())
        for seq in range(max(begin, 1), end + 1):
            raw = self.store.sent(seq)
            msg = _parsed(raw) if raw is not None else None
            if msg is None or msg.msg_type in fix.ADMIN_TYPES:
                gap_from = gap_from or seq
                continue
            if gap_from:
                self._gap_fill(gap_from, seq, now)
                gap_from = 0
            orig = msg.get(fix.T_SENDING_TIME) or now
            self._out.append(fix.encode(msg.msg_type, msg.body(), seq=seq,
                                        sender=self._sender_b, target=self._target_b,
                                        sending_time=now, poss_dup=True,
                                        orig_sending_time=orig))
        if gap_from:
            self._gap_fill(gap_from, end + 1, now)
        self._last_out = self.clock()

    def _gap_fill(self, seq: int, new_seq: int, now: bytes) -> None:
        self._out.append(fix.encode(fix.SEQUENCE_RESET,
                                    [(fix.T_GAP_FILL, "Y"), (fix.T_NEW_SEQ_NO, new_seq)],
                                    seq=seq, sender=self._sender_b, target=self._target_b,
                                    sending_time=now, poss_dup=True, orig_sending_time=now))

    # --- timers -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Heartbeats, test requests and the peer's heartbeat timeout."""
        if not self.logged_on or self.closed or self.heartbeat_s <= 0:
            return
        now = self.clock()
        hb = self.heartbeat_s * 1_000_000_000
        if now - self._last_out >= hb:
            self.send(fix.HEARTBEAT, [])
        idle = now - self._last_in
        if idle >= 2.4 * hb:
            self.logout("no message from the peer within two heartbeat intervals")
            self.closed = "peer silent"
        elif idle >= 1.2 * hb and not self._test_pending:
            self._test_pending = True
            self.send(fix.TEST_REQUEST, [(fix.T_TEST_REQ_ID, f"T{now}")])


def _parsed(raw: bytes) -> FixMessage | None:
    items = fix.FixReader().feed(raw)
    return items[0] if len(items) == 1 and isinstance(items[0], FixMessage) else None


__all__ = [
    "REJ_INCORRECT_FORMAT",
    "REJ_INVALID_MSG_TYPE",
    "REJ_REQUIRED_TAG_MISSING",
    "REJ_VALUE_INCORRECT",
    "FixSession",
    "SeqStore",
]
