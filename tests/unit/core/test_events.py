import numpy as np
import pytest

from framework.core import events as ev
from framework.core.events import EVENT_DTYPE, make_events


def test_event_dtype_is_48_bytes_aligned_with_all_fields():
    assert EVENT_DTYPE.itemsize == 48
    assert EVENT_DTYPE.isalignedstruct
    assert EVENT_DTYPE.names == (
        "exch_ts",
        "local_ts",
        "price",
        "qty",
        "order_id",
        "instrument",
        "kind",
        "side",
        "flags",
    )
    assert EVENT_DTYPE["exch_ts"] == np.int64
    assert EVENT_DTYPE["order_id"] == np.uint64


def test_kind_and_flag_constants_are_distinct():
    kinds = [v for k, v in vars(ev).items() if k.startswith("KIND_") and isinstance(v, int)]
    assert len(kinds) == len(set(kinds)) == len(ev.KIND_NAMES)
    flags = [v for k, v in vars(ev).items() if k.startswith("FLAG_") and isinstance(v, int)]
    assert len(flags) == len(set(flags))
    assert all(f & (f - 1) == 0 for f in flags), "every flag is a single bit"


def test_make_events_rejects_unknown_field_with_field_list():
    with pytest.raises(ValueError, match=r"unknown event field.*'prize'"):
        make_events(prize=[1])


def test_make_events_rejects_ragged_columns():
    with pytest.raises(ValueError, match="different lengths"):
        make_events(price=[1, 2], qty=[1])


def test_constants_usable_in_numba_code():
    from numba import njit

    @njit(cache=False)
    def count_trades(kind):
        n = 0
        for k in kind:
            if k == ev.KIND_TRADE:
                n += 1
        return n

    e = make_events(kind=[ev.KIND_TRADE, ev.KIND_ADD, ev.KIND_TRADE])
    assert count_trades(e["kind"]) == 2


def test_flag_names_lists_set_bits():
    assert ev.flag_names(ev.FLAG_LAST | ev.FLAG_HIDDEN) == ["last", "hidden"]
    assert ev.kind_name(200) == "kind200"
