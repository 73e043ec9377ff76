"""The leader/follower generator: determinism, the lag it promises, pushes, a stored leader."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from framework.book.replay import replay_book_rows
from framework.core.errors import ConfigError
from framework.core.events import FLAG_LAST
from framework.ingest.base import ImportReport, validate_events
from framework.ingest.synthetic import SyntheticParams, generate_day, market_hours_ns
from framework.ingest.synthetic_pair import PairParams, follow_stored, generate_pair
from framework.store import TickStore

DATE = dt.date(2024, 3, 1)
T_OPEN = market_hours_ns(DATE)[0]
#: calm all session with a slow latent mid, so pushes are the only moves of several ticks
QUIET = SyntheticParams(mean_duration_s=(1e7, 180.0, 300.0), volatility=(0.05, 0.9, 0.3))
PUSHES = ((120.0, 6.0), (300.0, -6.0), (480.0, 8.0))


def mid_path(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exchange time, book mid in ticks) after every message."""
    rows = replay_book_rows(events, levels=1, l3=False)
    ts = events["exch_ts"][(events["flags"] & FLAG_LAST) != 0]
    return ts, 0.5 * (rows[:, 0] + rows[:, 2])


def first_move(ts: np.ndarray, mid: np.ndarray, after_ns: int, ticks: float) -> int:
    """Time of the first book move of at least |ticks| - 1 in the push's direction."""
    i0 = np.searchsorted(ts, after_ns)
    before = mid[i0 - 1]
    moved = (mid[i0:] - before) * np.sign(ticks) >= abs(ticks) - 1
    return int(ts[i0 + int(np.argmax(moved))])


@pytest.fixture(scope="module")
def pushed_pair():
    return generate_pair(
        date=DATE, n_events=60_000, seed=5, session_s=600, params=QUIET,
        pair=PairParams(lag_ms=300, pushes=PUSHES),
    )


def test_same_seed_gives_identical_days_and_a_follower_stream_of_its_own(pushed_pair):
    again = generate_pair(
        date=DATE, n_events=60_000, seed=5, session_s=600, params=QUIET,
        pair=PairParams(lag_ms=300, pushes=PUSHES),
    )
    for a, b in zip(pushed_pair, again, strict=True):
        assert a.events.tobytes() == b.events.tobytes()
    lead, lag = pushed_pair
    assert (lead.instrument.key, lag.instrument.key) == ("SIM/LEAD", "SIM/LAG")
    assert lag.instrument.extra["follows"] == "SIM/LEAD"
    assert lead.labels.equals(lag.labels)  # one regime path for both
    assert not np.array_equal(lead.events["exch_ts"][:1000], lag.events["exch_ts"][:1000])


def test_without_pushes_the_leader_is_the_plain_synthetic_day():
    lead, _ = generate_pair(date=DATE, n_events=20_000, seed=9)
    plain = generate_day(date=DATE, n_events=20_000, seed=9, symbol="LEAD")
    assert lead.events.tobytes() == plain.events.tobytes()


def test_both_days_pass_the_importers_validation(pushed_pair):
    for day in pushed_pair:
        rep = ImportReport(source="synthetic_pair")
        assert len(validate_events(day.events, rep, l3=False)) == len(day.events)
        assert not rep.rejected


def test_each_push_moves_the_leader_first_and_the_follower_one_lag_later(pushed_pair):
    (lt, lm), (ft, fm) = (mid_path(d.events) for d in pushed_pair)
    for at_s, ticks in PUSHES:
        t = T_OPEN + int(at_s * 1e9)
        lead_at = first_move(lt, lm, t, ticks) - t
        lag_at = first_move(ft, fm, t, ticks) - t
        # the books move at their next message after the latent move (~10 messages/s each)
        assert 0 <= lead_at < 300_000_000
        assert 300_000_000 <= lag_at < 600_000_000


def test_the_follower_mid_is_the_leader_mid_one_lag_later():
    lead, lag = generate_pair(
        date=DATE, n_events=60_000, seed=2, session_s=600,
        pair=PairParams(lag_ms=500, basis_ticks=40.0),
    )
    (lt, lm), (ft, fm) = mid_path(lead.events), mid_path(lag.events)
    grid = T_OPEN + np.arange(10, 590) * 1_000_000_000
    lead_then = lm[np.searchsorted(lt, grid - 500_000_000, side="right") - 1]
    lag_now = fm[np.searchsorted(ft, grid, side="right") - 1]
    lead_now = lm[np.searchsorted(lt, grid, side="right") - 1]
    # each book is within a tick of the latent mid (one-tick hysteresis) -> gap within 2
    assert np.abs(lag_now - lead_then - 40.0).max() <= 2.0
    # and the lagged comparison is the tighter one: the follower really is late
    assert np.abs(lag_now - lead_then - 40).mean() < np.abs(lag_now - lead_now - 40).mean()


def test_follower_of_a_stored_day_tracks_its_book(store_root):
    store = TickStore(store_root)
    real = generate_day(date=DATE, n_events=30_000, seed=4, symbol="REAL", venue="XTST")
    store.write(real.instrument, real.date, real.events)
    day = follow_stored(
        store, ("XTST", "REAL", DATE), follower=("SIM", "REAL_LAG"), n_events=30_000, seed=1,
        pair=PairParams(lag_ms=250),
    )
    assert day.instrument.key == "SIM/REAL_LAG"
    assert day.instrument.tick_size == real.instrument.tick_size
    (rt, rm), (ft, fm) = mid_path(real.events), mid_path(day.events)
    # the follower's latent mid at time t is the stored book's mid at t - lag, read on the
    # generator's 50 ms grid from the stored day's first quote; after each of its messages
    # the follower's book is within a tick of its latent mid
    grid_ns, lag_steps = 50_000_000, 5
    gi = (ft - rt[0]) // grid_ns
    then = rm[np.searchsorted(rt, rt[0] + np.maximum(gi - lag_steps, 0) * grid_ns, "right") - 1]
    assert np.abs(fm - then).max() < 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pair": PairParams(pushes=((30_000.0, 5.0),))}, "after the session's end"),
        ({"leader": ("SIM", "X"), "follower": ("SIM", "X")}, "give two instruments"),
        ({"session_s": -1.0}, "session_s"),
    ],
)
def test_bad_pair_arguments_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        generate_pair(date=DATE, n_events=20_000, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lag_ms": -5.0}, "lag_ms"),
        ({"tracking_ticks": -1.0}, "tracking"),
        ({"pushes": ((10.0,),)}, "push"),
    ],
)
def test_bad_pair_params_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PairParams(**kwargs)
