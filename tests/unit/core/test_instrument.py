from decimal import Decimal

import pytest

from framework.core import ConfigError, DataError, Instrument


def test_instrument_json_round_trip_keeps_every_field():
    inst = Instrument(
        venue="BINANCE",
        symbol="BTCUSDT",
        asset_class="crypto",
        tick_size="0.01",
        lot_size="0.00001",
        currency="USDT",
        maker_fee=-0.0001,
        taker_fee=0.0004,
    )
    back = Instrument.from_json(inst.to_json())
    assert back == inst
    assert back.lot_size == Decimal("0.00001")


def test_price_to_ticks_off_grid_names_instrument_and_grid():
    aapl = Instrument(venue="XNAS", symbol="AAPL", tick_size="0.01")
    assert aapl.price_to_ticks("101.01") == 10101
    with pytest.raises(DataError, match=r"101\.005 is not on the 0\.01 tick grid of XNAS/AAPL"):
        aapl.price_to_ticks("101.005")


def test_scaled_to_ticks_flags_off_grid_and_handles_negative_prices():
    inst = Instrument(venue="GLBX", symbol="ESH1", asset_class="future", tick_size="0.25")
    ticks, off = inst.scaled_to_ticks([3722_750_000_000, -250_000_000, 1_100_000_000], 10**9)
    assert ticks.tolist() == [14891, -1, 4]
    assert off.tolist() == [False, False, True]


def test_tick_finer_than_source_unit_is_a_config_error():
    inst = Instrument(venue="X", symbol="Y", tick_size="0.00001")
    with pytest.raises(ConfigError, match="finer than the source"):
        inst.scaled_to_ticks([1], 10_000)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tick_size": "0"}, "tick size"),
        ({"tick_size": "abc"}, "not a number"),
        ({"asset_class": "bond"}, "asset class 'bond' is unknown"),
        ({"symbol": "A/B"}, "symbol 'A/B' is not a valid name"),
    ],
)
def test_bad_instrument_fields_raise_config_error(kwargs, match):
    base = {"venue": "XNAS", "symbol": "AAPL"}
    with pytest.raises(ConfigError, match=match):
        Instrument(**(base | kwargs))


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown instrument field"):
        Instrument.from_dict({"venue": "X", "symbol": "Y", "tick": "0.01"})
