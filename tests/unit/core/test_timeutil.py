import datetime as dt

import pytest

from framework.core import ConfigError
from framework.core.timeutil import (
    date_from_name,
    format_ns,
    parse_date,
    venue_midnight_ns,
)


def test_parse_date_accepts_iso_and_compact():
    assert parse_date("2012-06-21") == dt.date(2012, 6, 21)
    assert parse_date("20120621") == dt.date(2012, 6, 21)


def test_parse_date_error_says_expected_form():
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_date("21/06/2012")


def test_date_from_name_reads_common_file_names():
    assert date_from_name("AMZN_2012-06-21_34200000_57600000_message_1.csv") == dt.date(2012, 6, 21)
    assert date_from_name("binance_usdm_btcusdt_20240808.gz") == dt.date(2024, 8, 8)
    assert date_from_name("12302019.NASDAQ_ITCH50") == dt.date(2019, 12, 30)
    assert date_from_name("sample.itch") is None


def test_nasdaq_midnight_is_new_york_time():
    # 2012-06-21 is in daylight saving time: midnight New York = 04:00 UTC
    ns = venue_midnight_ns(dt.date(2012, 6, 21), "XNAS")
    assert format_ns(ns) == "2012-06-21T04:00:00.000000000Z"
    assert (
        format_ns(venue_midnight_ns(dt.date(2012, 1, 3), "XNAS"))
        == "2012-01-03T05:00:00.000000000Z"
    )
