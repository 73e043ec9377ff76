import datetime as dt
import math

import numpy as np
import pytest

from framework.book.l2 import L2Book
from framework.core.events import BUY, FLAG_LAST, KIND_LEVEL, KIND_TRADE, SELL, make_events
from framework.features import (
    F_IMBALANCE,
    F_MICROPRICE,
    F_TFI,
    F_VOLATILITY,
    N_FEATURES,
    compute_features,
    feature_state,
    feature_update,
)

S = 1_000_000_000


def book_events(rows):
    """rows: (ts, kind, side, price, qty, last)"""
    cols = list(zip(*rows, strict=True))
    return make_events(
        exch_ts=cols[0],
        local_ts=cols[0],
        kind=cols[1],
        side=cols[2],
        price=cols[3],
        qty=cols[4],
        flags=[FLAG_LAST if last else 0 for last in cols[5]],
    )


def test_microprice_and_imbalance_by_hand():
    ev = book_events([(1, KIND_LEVEL, BUY, 100, 3, False), (1, KIND_LEVEL, SELL, 102, 1, True)])
    f = compute_features(ev)
    # microprice = (100*1 + 102*3) / 4 = 101.5 ; imbalance = (3-1)/4 = 0.5
    assert f[1, F_MICROPRICE] == pytest.approx(101.5)
    assert f[1, F_IMBALANCE] == pytest.approx(0.5)
    assert math.isnan(f[1, F_TFI])
    # inside a message (no FLAG_LAST) nothing is computed from a half-updated book
    assert math.isnan(f[0, F_MICROPRICE])


def test_trade_flow_imbalance_decays_with_half_life():
    ev = book_events([(0, KIND_TRADE, BUY, 100, 4, True), (S, KIND_TRADE, SELL, 100, 2, True)])
    f = compute_features(ev, state=feature_state(tfi_halflife_ns=S))
    assert f[0, F_TFI] == pytest.approx(1.0)
    # after one half-life the buy flow counts 2: (2 - 2) / (2 + 2) = 0
    assert f[1, F_TFI] == pytest.approx(0.0)


def test_volatility_is_zero_for_a_still_mid_and_positive_when_it_moves():
    rows = [(0, KIND_LEVEL, BUY, 100, 1, False), (0, KIND_LEVEL, SELL, 102, 1, True)]
    rows += [(k * S, KIND_LEVEL, BUY, 100, 1 + k, True) for k in range(1, 4)]
    f = compute_features(book_events(rows))
    assert f[-1, F_VOLATILITY] == 0.0
    rows.append((5 * S, KIND_LEVEL, SELL, 104, 1, False))
    rows.append((5 * S, KIND_LEVEL, SELL, 102, 0, True))
    f = compute_features(book_events(rows))
    assert f[-1, F_VOLATILITY] > 0.0


def test_one_pass_equals_event_by_event_updates_and_batches():
    from framework.ingest.synthetic import generate_day

    ev = generate_day(date=dt.date(2024, 1, 2), n_events=30_000, seed=3).events
    whole = compute_features(ev)
    # live style: a book and one kernel call per event
    book = L2Book(n_ticks=1 << 15)
    st = feature_state()
    out = np.full((len(ev), N_FEATURES), np.nan)
    for i, e in enumerate(ev):
        book.apply(int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"]))
        if e["kind"] != KIND_TRADE and not e["flags"] & FLAG_LAST:
            out[i] = out[i - 1] if i else np.nan
            continue
        bb, ba = book.best_bid, book.best_ask
        feature_update.py_func(
            st,
            out[i],
            int(e["local_ts"]),
            int(e["kind"]),
            int(e["side"]),
            int(e["qty"]),
            bb if bb is not None else np.iinfo(np.int64).min,
            ba if ba is not None else np.iinfo(np.int64).min,
            book.best_bid_qty,
            book.best_ask_qty,
        )
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(out))
    np.testing.assert_allclose(whole[~np.isnan(whole)], out[~np.isnan(out)], rtol=0, atol=1e-12)
    # in two batches with carried state and book
    from framework.book.l2 import l2_new

    bk = l2_new(1 << 15)
    st2 = feature_state()
    a = compute_features(ev[:12_345], state=st2, book=bk)
    b = compute_features(ev[12_345:], state=st2, book=bk)
    np.testing.assert_array_equal(np.vstack([a, b]), whole)


def test_the_features_book_holds_every_far_level_or_says_it_cannot():
    from framework.book.l2 import l2_new
    from framework.core.errors import ConfigError

    # a touch at 100/102, then 3,000 bids far below it, then the touch moves: the book of
    # compute_features grows its far lists; a book given to it says when it is too small
    rows = [(1, KIND_LEVEL, BUY, 100, 3, False), (1, KIND_LEVEL, SELL, 102, 1, True)]
    rows += [(2 + k, KIND_LEVEL, BUY, 1 + k, 1, True) for k in range(3_000) if 1 + k < 50]
    rows += [(5_000 + k, KIND_LEVEL, BUY, -(10**9) + k, 1, True) for k in range(3_000)]
    rows += [(9_000, KIND_LEVEL, BUY, 100, 0, True)]  # the best bid goes: 49 is next
    f = compute_features(book_events(rows))
    # microprice with bid 49 x 1 and ask 102 x 1
    assert f[-1, F_MICROPRICE] == pytest.approx((49 + 102) / 2)
    with pytest.raises(ConfigError, match=r"more than 1,024 price levels a side .*far_levels"):
        compute_features(book_events(rows), book=l2_new(64, far_levels=1024))


def test_batches_may_start_inside_a_message():
    # a batch boundary inside a message: its first rows carry the values of the row before
    # (the previous batch's last), as one pass over the whole array does
    from framework.book.l2 import l2_new
    from framework.ingest.synthetic import generate_day

    ev = generate_day(date=dt.date(2024, 1, 2), n_events=20_000, seed=4).events
    whole = compute_features(ev)
    inside = np.flatnonzero((ev["flags"] & FLAG_LAST == 0) & (ev["kind"] != KIND_TRADE))
    inside = inside[inside > 200]
    assert len(inside) > 100
    for cut in (*inside[:3], *inside[len(inside) // 2 : len(inside) // 2 + 3], *inside[-3:]):
        bk, st = l2_new(1 << 15), feature_state()
        a = compute_features(ev[:cut], state=st, book=bk)
        b = compute_features(ev[cut:], state=st, book=bk)
        np.testing.assert_array_equal(np.vstack([a, b]), whole, err_msg=f"cut at {cut}")
