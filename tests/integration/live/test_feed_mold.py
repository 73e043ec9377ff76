"""The venue process replays a stored day as ITCH over MoldUDP64 on 127.0.0.1 and the feed
handler's book equals the stored day's book (what ``hftlab book replay`` builds) at every
packet boundary checked: without loss, with 1 % of packets dropped (all recovered by
re-request), over multicast; a gap that cannot be filled raises the alarm."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import time
from pathlib import Path

import pytest

from framework.cli import main
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.feeds.itch_mold import GapError
from tests.integration.live.feed_helpers import (
    check_rows,
    free_udp_port,
    handler_for,
    reference,
    venue_process,
)

DATE = dt.date(2024, 3, 1)
AMZN = "lobster_AMZN_2012-06-21_L1_fullday/AMZN_2012-06-21_34200000_57600000_message_1.csv"


def _store(tmp: Path, n_events: int, seed: int) -> str:
    root = str(tmp)
    day = generate_day(date=DATE, n_events=n_events, seed=seed, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A seeded synthetic L3 day large enough for > 10,000 packets."""
    return _store(tmp_path_factory.mktemp("big"), 500_000, 11)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("small"), 30_000, 12)


def _replay_and_check(store: str, tmp_path: Path, *venue_args: str, venue: str = "SIM",
                      symbol: str = "SYN", date: dt.date = DATE,
                      group: str | None = None) -> tuple[int, object, str]:
    rep, ref = reference(store, venue, symbol, date)
    rport = free_udp_port()
    listen = ("127.0.0.1", 0) if group is None else (group, free_udp_port())
    h = handler_for(rep, rerequest_port=rport, record_rows=rep.n_messages, listen=listen,
                    gap_timeout_s=10.0)
    try:
        with venue_process(store, venue, symbol, date, "--speed", "max", "--itch",
                           f"{listen[0]}:{h.port}", "--rerequest-port", str(rport),
                           "--linger", "60", *venue_args, log=tmp_path / "venue.log"):
            h.run_until_end(timeout_s=240)
        assert h.messages == rep.n_messages
        assert h.expected == rep.n_messages + 1
        checked = check_rows(h, rep, ref)
    finally:
        h.close()
    return checked, h, (tmp_path / "venue.log").read_text()


@pytest.mark.slow
def test_handler_book_equals_book_replay_at_every_packet_boundary(
    big_store: str, tmp_path: Path
) -> None:
    checked, h, log = _replay_and_check(big_store, tmp_path)
    assert checked >= 10_000
    assert not h.bad  # type: ignore[attr-defined]
    assert "venue done" in log


@pytest.mark.slow
def test_one_percent_dropped_is_all_recovered_and_the_book_still_equal(
    big_store: str, tmp_path: Path
) -> None:
    checked, h, log = _replay_and_check(big_store, tmp_path, "--drop", "0.01", "--seed", "5")
    assert checked >= 10_000
    assert h.requests_sent > 0  # type: ignore[attr-defined]
    dropped = int(log.split(" dropped on purpose")[0].rsplit(", ", 1)[1])
    assert dropped > 50  # ~1 % of > 10,000 packets


def test_multicast_group_on_loopback(small_store: str, tmp_path: Path) -> None:
    checked, _, _ = _replay_and_check(small_store, tmp_path, "--drop", "0.02", group="239.7.7.7")
    assert checked > 500


@pytest.mark.parametrize("how", ["silent_rerequest_port", "buffer_too_short"])
def test_a_gap_that_cannot_be_filled_raises_the_alarm(
    small_store: str, tmp_path: Path, how: str
) -> None:
    rep, _ = reference(small_store, "SIM", "SYN", DATE)
    venue_port = free_udp_port()
    silent = None
    if how == "silent_rerequest_port":  # a socket that never answers
        import socket

        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        ask = silent.getsockname()[1]
        extra = ["--rerequest-port", str(venue_port)]
    else:
        ask = venue_port
        extra = ["--rerequest-port", str(venue_port), "--buffer", "50"]
    h = handler_for(rep, rerequest_port=ask, record_rows=0, gap_timeout_s=0.5, retry_s=0.05)
    try:
        with venue_process(small_store, "SIM", "SYN", DATE, "--speed", "max", "--itch",
                           f"127.0.0.1:{h.port}", "--drop", "0.05", "--seed", "1",
                           "--linger", "30", *extra, log=tmp_path / "venue.log"):
            with pytest.raises(GapError, match=r"messages \d+\.\.\d+ lost") as info:
                h.run_until_end(timeout_s=120)
            err = info.value
            assert err.first <= err.last
            assert h.expected == err.first  # nothing past the gap was applied
            with pytest.raises(GapError):  # and it stays raised: no papering over
                h.poll()
    finally:
        h.close()
        if silent is not None:
            silent.close()
    if how == "buffer_too_short":
        assert "the buffer holds" in (tmp_path / "venue.log").read_text()


def test_venue_stops_cleanly_on_sigterm(small_store: str, tmp_path: Path) -> None:
    port = free_udp_port()
    with venue_process(small_store, "SIM", "SYN", DATE, "--speed", "0.001", "--itch",
                       f"127.0.0.1:{port}", log=tmp_path / "venue.log") as proc:
        deadline = time.monotonic() + 60
        while "ITCH messages" not in (tmp_path / "venue.log").read_text():
            assert time.monotonic() < deadline, "venue did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    log = (tmp_path / "venue.log").read_text()
    assert "SIGTERM: shutting down" in log
    assert "venue done" in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--itch", "localhost"], "IPV4:PORT"),
        (["--itch", "127.0.0.1:9", "--drop", "2"], "must be a fraction"),
        (["--itch", "127.0.0.1:9", "--speed", "fast"], "must be a positive number"),
        (["--itch", "127.0.0.1:9", "--ouch-port", "70000"], "is not a port number"),
        (["--itch", "127.0.0.1:9", "--fix-port", "-1"], "is not a port number"),
        (["--itch", "127.0.0.1:9", "--rerequest-port", "x"], "is not a port number"),
        ([], "give at least one --itch"),
    ],
)
def test_venue_refuses_bad_options_in_one_line(
    small_store: str, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    with contextlib.suppress(SystemExit):  # argparse's usage errors exit(2)
        rc = main(["venue", "--store", small_store, "--venue", "SIM", "--symbol", "SYN",
                   "--date", "2024-03-01", *extra])
        assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


@pytest.mark.slow
def test_real_lobster_day_replays_through_the_feed(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """ITCH samples in the shared data hold no orders (start-of-day blocks, one-message
    pcaps), so the real L3 day is the LOBSTER AMZN day, imported as any day is."""
    root = str(tmp_path_factory.mktemp("amzn"))
    assert main(["data", "import", "lobster", str(shared_data / AMZN), "--store", root]) == 0
    date = dt.date(2012, 6, 21)
    checked, _, _ = _replay_and_check(root, tmp_path, "--drop", "0.01", venue="XNAS",
                                      symbol="AMZN", date=date)
    assert checked > 1_500  # every packet of the day's 80,881 events
