"""A QuickFIX engine in its own process, driven over stdin, reporting on stdout (JSON lines).

    python quickfix_peer.py CONFIG

Reports ``{"ev": "logon"|"logout"}``, ``{"ev": "admin_in"|"admin_out", "type": T}`` and
``{"ev": "app_in", "fields": {tag: value}}``. As acceptor it answers each NewOrderSingle with
an ExecutionReport New then a full fill. Commands, one per line: ``order CLORDID PRICE``
(send a NewOrderSingle), ``bad CLORDID`` (one with Side 7), ``bump N`` (skip N outgoing
sequence numbers), ``quit`` (leave at once: QuickFIX 1.16 can crash in stop() when it races
a disconnect, so the process exits without it and the kernel closes its sockets).

It runs in a separate process so the engine's threads and its C++ state can never take the
test process down.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading

import quickfix as qf

_out = threading.Lock()


def emit(**kw: object) -> None:
    with _out:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class App(qf.Application):  # type: ignore[misc]
    def __init__(self, acceptor: bool) -> None:
        super().__init__()
        self.acceptor = acceptor
        self.sid: object = None

    def onCreate(self, s: object) -> None:
        # a copy: the engine's own SessionID only lives for the callback
        self.sid = qf.SessionID(s.getBeginString().getValue(), s.getSenderCompID().getValue(),
                                s.getTargetCompID().getValue())

    def onLogon(self, s: object) -> None:
        emit(ev="logon")

    def onLogout(self, s: object) -> None:
        emit(ev="logout")

    def toAdmin(self, m: object, s: object) -> None:
        emit(ev="admin_out", type=m.getHeader().getField(35))

    def fromAdmin(self, m: object, s: object) -> None:
        emit(ev="admin_in", type=m.getHeader().getField(35))

    def toApp(self, m: object, s: object) -> None:
        return

    def fromApp(self, m: object, s: object) -> None:
        fields = {t: m.getField(t) for t in (11, 14, 17, 31, 32, 37, 38, 39, 44, 54, 55, 150,
                                             151) if m.isSetField(t)}
        fields[35] = m.getHeader().getField(35)
        emit(ev="app_in", fields=fields)
        if self.acceptor and fields[35] == "D":
            qty = fields[38]
            for exec_type, status, leaves, cum, extra in (
                ("0", "0", qty, "0", {}),
                ("F", "2", "0", qty, {31: fields.get(44, "1"), 32: qty}),
            ):
                send(s, "8", {37: "Q" + fields[11], 17: f"E{exec_type}{fields[11]}",
                              150: exec_type, 39: status, 11: fields[11], 54: fields[54],
                              55: fields[55], 38: qty, 151: leaves, 14: cum,
                              6: fields.get(44, "0"), **extra})


def send(sid: object, msg_type: str, fields: dict[int, object]) -> bool:
    msg = qf.Message()
    msg.getHeader().setField(qf.StringField(35, msg_type))
    for tag, value in fields.items():
        msg.setField(qf.StringField(tag, str(value)))
    return bool(qf.Session.sendToTarget(msg, sid))


def main() -> None:
    settings = qf.SessionSettings(sys.argv[1])
    acceptor = settings.get().getString("ConnectionType") == "acceptor"
    app = App(acceptor)
    stores, logs = qf.FileStoreFactory(settings), qf.FileLogFactory(settings)
    engine = (qf.SocketAcceptor if acceptor else qf.SocketInitiator)(app, stores, settings,
                                                                     logs)
    engine.start()
    emit(ev="started")
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        if cmd[0] == "order":
            ok = send(app.sid, "D", {11: cmd[1], 21: 1, 55: "TEST", 54: 1, 60: now(), 38: 3,
                                     40: 2, 44: cmd[2], 59: 0})
        elif cmd[0] == "bad":
            ok = send(app.sid, "D", {11: cmd[1], 55: "TEST", 54: 7, 60: now(), 38: 1, 40: 2,
                                     44: "97"})
        elif cmd[0] == "bump":
            sess = qf.Session.lookupSession(app.sid)
            sess.setNextSenderMsgSeqNum(sess.getExpectedSenderNum() + int(cmd[1]))
            ok = True
        else:
            ok = False
        emit(ev="done", cmd=cmd[0], ok=ok)
    os._exit(0)


if __name__ == "__main__":
    main()
