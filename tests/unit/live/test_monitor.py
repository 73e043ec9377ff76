"""Stage latencies: marks on the hot path, HDR summaries off it, Prometheus export."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from live.monitor import (
    RX,
    RX_TO_WIRE,
    RX_WAIT,
    STAGES,
    STALL,
    TO_WIRE,
    TOTAL,
    WIRE,
    Metrics,
    StageClock,
)


def test_stage_and_tick_latencies() -> None:
    c = StageClock(capacity=1024)
    for i in range(100):
        t = 1_000_000 + i * 10_000
        for k in range(len(STAGES)):
            c.mark(k, t + k * 1_000 + (i if k == 3 else 0))  # the strategy stage varies
        c.commit()
    c.mark(0, 5)  # a tick in progress is not counted
    st = c.stats()
    assert st["decoded"]["count"] == 100
    assert st["decoded"]["p50"] == pytest.approx(1_000, rel=1e-3)
    assert st["strategy"]["max"] == pytest.approx(1_099, rel=1e-3)
    assert st[TOTAL]["p50"] == pytest.approx(6_000, rel=1e-3)  # packet in to bytes sent
    assert "packet_in" not in st  # the first stage has no stage before it


def test_the_wire_stamp_is_timed_from_the_send_and_from_the_packet() -> None:
    c = StageClock(capacity=64)
    for i in range(10):
        t = 1_000_000 * (i + 1)
        for k in range(len(STAGES)):
            c.mark(k, t + k * 1_000)  # ... encoded at +5 µs, the send returned at +6 µs
        if i < 8:
            c.mark(WIRE, t + 5_300)  # the kernel handed the bytes on 0.3 µs into the call
        c.commit()
    st = c.stats()
    assert st["wire"]["count"] == 8  # ticks without a stamp count in the other figures
    assert st["wire"]["p50"] == pytest.approx(300, rel=1e-2)
    assert st[TO_WIRE]["p50"] == pytest.approx(5_300, rel=1e-3)
    assert st[TOTAL]["p50"] == pytest.approx(6_000, rel=1e-3)  # the stamp is not a stage
    assert st[TOTAL]["count"] == 10
    assert "tick_to_wire" in c.table()


def test_the_receive_stamp_is_timed_to_the_packet_and_to_the_wire() -> None:
    c = StageClock(capacity=64)
    for i in range(10):
        t = 1_000_000 * (i + 1)
        for k in range(len(STAGES)):
            c.mark(k, t + k * 1_000)
        c.mark(WIRE, t + 5_300)
        if i < 6:
            c.mark(RX, t - 2_000)  # the kernel took the packet 2 µs before the call returned
        c.commit()
    st = c.stats()
    assert st[RX_WAIT]["count"] == 6  # ticks without one count in the other figures
    assert st[RX_WAIT]["p50"] == pytest.approx(2_000, rel=1e-2)
    assert st[RX_TO_WIRE]["p50"] == pytest.approx(7_300, rel=1e-3)
    assert st[TO_WIRE]["p50"] == pytest.approx(5_300, rel=1e-3)
    assert st[TOTAL]["p50"] == pytest.approx(6_000, rel=1e-3)  # stamps are not stages
    assert "rx_to_wire" in c.table()


def test_ticks_that_stop_early_count_only_where_they_went() -> None:
    c = StageClock()
    for _ in range(10):  # packets that changed nothing: book reached, no order
        c.mark(0, 100)
        c.mark(1, 150)
        c.mark(2, 400)
        c.commit()
    st = c.stats()
    assert st["book"]["count"] == 10
    assert "sent" not in st
    assert st[TOTAL]["p50"] == pytest.approx(300, rel=1e-2)


def test_ring_overwrite_is_counted() -> None:
    c = StageClock(capacity=8)
    for i in range(20):
        c.mark(0, 10 + i)
        c.mark(1, 20 + i)
        c.commit()
    c.summarise()
    assert c.lost == 20 - 7
    assert c.stats()["decoded"]["count"] == 7
    assert "overwritten" in c.table()


def test_the_loops_stalls_are_summarised_and_the_last_ones_kept_in_order() -> None:
    import numpy as np

    c = StageClock(capacity=4)
    assert STALL not in c.stats()  # none logged: no row
    c.note_stalls(np.zeros((0, 2), np.int64))
    c.note_stalls(np.array([[100, 60_000], [200, 80_000]], np.int64))
    c.note_stalls(np.array([[300 + 100 * k, 50_000 + k] for k in range(4)], np.int64))
    st = c.stats()[STALL]
    assert st["count"] == 6  # every one in the histogram
    assert st["max"] == pytest.approx(80_000, rel=1e-3)
    assert c.stalls_written == 6
    log = c.stall_log()  # the last four, oldest first
    assert log[:, 0].tolist() == [300, 400, 500, 600]
    assert log[:, 1].tolist() == [50_000, 50_001, 50_002, 50_003]
    c.note_stalls(np.array([[1_000 + k, 1] for k in range(9)], np.int64))  # more than it holds
    assert c.stall_log()[:, 0].tolist() == [1_005, 1_006, 1_007, 1_008]
    assert STALL in c.table()


def test_values_over_a_bound_are_counted_from_the_histogram() -> None:
    c = StageClock(capacity=64)
    for i, d in enumerate((10_000, 49_000, 50_000, 51_000, 80_000, 2_000_000)):
        c.mark(0, 1_000_000 * (i + 1))
        c.mark(1, 1_000_000 * (i + 1) + d)
        c.commit()
    assert c.count_over("decoded", 50_000) == 3  # 51 µs, 80 µs, 2 ms
    assert c.count_over("decoded", 0) == 6
    assert c.count_over("decoded", 5_000_000) == 0
    assert c.count_over(STALL, 1) == 0  # nothing recorded


def test_metrics_export() -> None:
    c = StageClock()
    c.mark(0, 1_000)
    c.mark(1, 3_000)
    c.commit()
    m = Metrics()
    m.update(c, pnl=12.5, position=-2)
    text = generate_latest(m.registry).decode()
    assert 'hftlab_stage_latency_ns{quantile="p50",stage="decoded"} 2000.0' in text
    assert 'hftlab_live{what="pnl"} 12.5' in text
    assert 'hftlab_live{what="position"} -2.0' in text
    assert 'hftlab_live{what="loop_stalls"} 0.0' in text
    import numpy as np

    c.note_stalls(np.array([[5_000, 70_000]], np.int64))
    m.update(c)
    text = generate_latest(m.registry).decode()
    assert 'hftlab_live{what="loop_stalls"} 1.0' in text
    assert 'hftlab_stage_latency_ns{quantile="max",stage="loop_stall"} 70' in text
