"""Order entry: wire encoders and the venue round trip on loopback.

Rows:

1. OUCH 5.0 Enter Order encode (``live.wire.ouch.encode_enter``, symbol and ClOrdID
   pre-padded as the gateway keeps them): target ≤ 1 µs each (≥ 1 M/s);
2. FIX 4.4 NewOrderSingle encode (``live.wire.fix.new_order_single``: header, body,
   BodyLength and CheckSum): target ≤ 5 µs each (≥ 200 k/s);
3. venue round trip, order → ack, OUCH and FIX: the gateway in this process, the venue
   (``serve_orders`` around a matcher) in a child process, over 127.0.0.1; p50 and p99 in µs
   are reported (the issue sets no target for them: NOT CHECKED).

The encode rates include the Python call of each encode (that is what a gateway pays).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.targets import target

_VENUE = """
import asyncio, sys
from live.venue.matching import Matcher
from live.venue.orders import serve_orders

async def main():
    servers = await serve_orders(Matcher(capacity=1 << 16), symbol="BENCH", ouch_port=0,
                                 fix_port=0)
    print(servers.ouch.port, servers.fix.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await servers.stop()

asyncio.run(main())
"""


def _encode_rows(quick: bool) -> list[dict[str, Any]]:
    from live.wire import fix, ouch

    rows = []
    n = 50_000 if quick else 500_000
    sym, cl = ouch.pad_symbol("AAPL"), ouch.pad_clordid("order-1")
    enc = ouch.encode_enter
    t0 = time.perf_counter()
    for i in range(n):
        enc(i, b"B", 100, sym, 1_234_500, b"0", cl)
    el = time.perf_counter() - t0
    rows.append({"name": "live orders: OUCH Enter Order encode", "events": n, "seconds": el,
                 "ns_each": round(el / n * 1e9, 1), **target("min rate", 1e6)})
    n = 20_000 if quick else 200_000
    ts = fix.utc_timestamp(time.time_ns())
    nos = fix.new_order_single
    t0 = time.perf_counter()
    for i in range(n):
        nos(i, b"CLIENT", b"VENUE", ts, b"ord-%d" % i, b"1", 100, b"AAPL", b"123.45")
    el = time.perf_counter() - t0
    rows.append({"name": "live orders: FIX NewOrderSingle encode", "events": n, "seconds": el,
                 "ns_each": round(el / n * 1e9, 1), **target("min rate", 2e5)})
    return rows


async def _round_trips(proto: str, port: int, n: int) -> list[float]:
    from live.gateways.base import Ack, OrderGateway, Side, TimeInForce
    from live.gateways.fix import FixGateway
    from live.gateways.ouch import OuchGateway

    g: OrderGateway
    if proto == "OUCH":
        g = OuchGateway("127.0.0.1", port, username="bench", password="", symbol="BENCH")
    else:
        g = FixGateway("127.0.0.1", port, sender="BENCH", target="HFTLAB", symbol="BENCH",
                       reset_on_logon=True)
    await g.connect()
    out = []
    try:
        for i in range(n + 50):
            t0 = time.perf_counter_ns()
            g.submit(Side.BUY, 1, 1000 + i % 7, tif=TimeInForce.DAY)
            ev = await g.wait_for(Ack, 10)
            el = time.perf_counter_ns() - t0
            assert isinstance(ev, Ack)
            if i >= 50:  # the first ones warm up both ends
                out.append(el / 1e3)
    finally:
        await g.close()
    return out


def _round_trip_rows(quick: bool) -> list[dict[str, Any]]:
    n = 300 if quick else 3000
    proc = subprocess.Popen([sys.executable, "-c", _VENUE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        assert proc.stdout is not None
        ouch_port, fix_port = (int(x) for x in proc.stdout.readline().split())
        for proto, port in (("OUCH", ouch_port), ("FIX", fix_port)):
            t0 = time.perf_counter()
            lat = asyncio.run(_round_trips(proto, port, n))
            el = time.perf_counter() - t0
            q = statistics.quantiles(lat, n=100)
            rows.append({
                "name": f"live orders: venue round trip order -> ack, {proto}",
                "events": n, "seconds": el, "p50_us": round(q[49], 1), "p99_us": round(q[98], 1),
                **target("max seconds", 60, unchecked="the issue asks for p50/p99, not a target"),
            })
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return _encode_rows(quick) + _round_trip_rows(quick)


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
