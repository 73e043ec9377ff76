"""Latency and queue-model spellings: every form parses to what it says, and every value
outside its range is refused with one line naming the allowed range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framework.core.errors import ConfigError
from framework.engine.config import (
    FEED_MULT,
    LATENCY_NS,
    QUEUE_POWER_N,
    LatencyConfig,
    QueueConfig,
    parse_duration,
)

DAY_NS = 86_400 * 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("10", 10), ("250us", 250_000), ("250µs", 250_000), ("1.5ms", 1_500_000),
     (" 2 s ", 2_000_000_000), ("+3ns", 3), ("86400s", DAY_NS)],
)  # fmt: skip
def test_durations_parse_to_nanoseconds(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("-1ms", "is out of range: allowed >= 0 and <= 86400000000000 (ns: 0 to one day)"),
        ("-0.5us", "is out of range"),
        ("86401s", "is out of range"),
        ("1xs", "does not parse; write e.g. 500us"),
        ("1 m", "does not parse"),
        ("ms", "does not parse"),
        ("", "does not parse"),
        ("1e3ms", "does not parse"),
        ("nan", "does not parse"),
    ],
)
def test_bad_durations_are_refused(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("constant", ("constant", 1_000_000, 1_000_000)),
        ("constant:1ms", ("constant", 1_000_000, 1_000_000)),
        ("Constant:500us,2ms", ("constant", 500_000, 2_000_000)),
        ("constant:0", ("constant", 0, 0)),
        ("feed", ("feed", 1.0, 1.0)),
        ("feed:1.5", ("feed", 1.5, 1.5)),
        ("feed:0,2", ("feed", 0.0, 2.0)),
    ],
)
def test_latency_forms(text: str, expect: tuple[str, float, float]) -> None:
    lat = LatencyConfig.parse(text)
    got = (lat.model, lat.entry_ns, lat.response_ns)
    if lat.model == "feed":
        got = (lat.model, lat.entry_mult, lat.response_mult)
    assert got == expect


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("constant:-1ms", "duration '-1ms' is out of range: allowed >= 0"),
        ("constant:1ms,-2ms", "duration '-2ms' is out of range"),
        ("constant:1xs", "duration '1xs' does not parse"),
        ("constant:1ms,2ms,3ms", "takes one or two values"),
        ("constant:1ms,", "takes one or two values"),
        ("feed:-1", f"feed multiplier '-1' is out of range: allowed {FEED_MULT.describe()}"),
        ("feed:abc", "feed multiplier 'abc' is out of range"),
        ("feed:nan", "feed multiplier 'nan' is out of range"),
        ("feed:1,inf", "feed multiplier 'inf' is out of range"),
        ("feed:1001", "feed multiplier '1001' is out of range"),
        ("empirical", "empirical needs a file"),
        ("gaussian:1ms", "is not one of: constant:1ms"),
        ("", "is not one of"),
    ],
)
def test_bad_latency_specs_are_refused(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        LatencyConfig.parse(text)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"entry_ns": -1},
        {"response_ns": DAY_NS + 1},
        {"model": "feed", "entry_mult": -0.5},
        {"model": "feed", "response_mult": float("nan")},
        {"model": "empirical", "series": np.array([[0.0, -1.0, 5.0]])},
        {"model": "empirical", "series": np.array([[0.0, 1.0, np.inf]])},
        {"model": "empirical", "series": np.array([[5.0, 1.0, 1.0], [1.0, 1.0, 1.0]])},
        {"model": "empirical", "series": np.zeros((0, 3))},
        {"model": "wormhole"},
    ],
)
def test_latency_config_built_directly_is_checked_too(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LatencyConfig(**kwargs)  # type: ignore[arg-type]


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "lat.csv"
    path.write_text(text)
    return f"empirical:{path}"


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("ts,entry_ns,response_ns\n0,100,200\n10,300,400\n", [[0, 100, 200], [10, 300, 400]]),
        ("0,100,200\n10,300,400\n", [[0, 100, 200], [10, 300, 400]]),  # no header: no row lost
        ("time, entry, response\n\n5, 0, 0\n", [[5, 0, 0]]),
    ],
)
def test_empirical_series_files(tmp_path: Path, text: str, rows: list[list[int]]) -> None:
    lat = LatencyConfig.parse(_csv(tmp_path, text))
    assert lat.series is not None
    assert lat.series.tolist() == rows


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "the latency series is empty"),
        ("ts,entry_ns,response_ns\n", "the latency series is empty"),
        ("ts,entry_ns,response_ns\n0,-5,10\n", ":2: entry_ns=-5 is out of range: allowed >= 0"),
        ("ts,entry_ns,response_ns\n0,5,1e20\n", ":2: response_ns=1e+20 is out of range"),
        ("ts,entry_ns,response_ns\n0,5,nan\n", ":2: response_ns=nan is out of range"),
        ("ts,entry_ns,response_ns\n0,5\n", ":2: 2 column(s)"),
        ("ts,entry_ns,response_ns\n0,5,5\nx,1,1\n", ":3: 'x,1,1' is not three numbers"),
        ("ts,entry_ns,response_ns\n10,5,5\n0,1,1\n", ":3: ts 0 is before the row above"),
    ],
)
def test_bad_empirical_series_files_name_the_file_and_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as err:
        LatencyConfig.parse(_csv(tmp_path, text))
    assert needle in str(err.value)
    assert str(tmp_path / "lat.csv") in str(err.value)


def test_missing_empirical_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such latency series file"):
        LatencyConfig.parse(f"empirical:{tmp_path / 'nope.csv'}")


@pytest.mark.parametrize(
    ("text", "model", "n"),
    [
        ("power", "power", 2.0),
        ("power:3", "power", 3.0),
        ("POWER:0.5", "power", 0.5),
        ("power:10", "power", 10.0),
        ("risk_averse", "risk_averse", 2.0),
        ("risk-averse", "risk_averse", 2.0),
        ("log", "log", 2.0),
        ("fifo", "fifo", 2.0),
    ],
)
def test_queue_forms(text: str, model: str, n: float) -> None:
    q = QueueConfig.parse(text)
    assert (q.model, q.n) == (model, n)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("power:-3", f"power exponent '-3' is out of range: allowed {QUEUE_POWER_N.describe()}"),
        ("power:0", "power exponent '0' is out of range"),
        ("power:abc", "power exponent 'abc' is out of range"),
        ("power:", "power exponent '' is out of range"),
        ("power:nan", "power exponent 'nan' is out of range"),
        ("power:11", "power exponent '11' is out of range"),
        ("log:2", "log takes no argument"),
        ("fifo:1", "fifo takes no argument"),
        ("powr", "queue model 'powr' is unknown; choose risk_averse | power[:n]"),
        ("", "queue model '' is unknown"),
    ],
)
def test_bad_queue_specs_are_refused_naming_the_range(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        QueueConfig.parse(text)
    assert needle in str(err.value)


@pytest.mark.parametrize("n", [0.0, -3.0, float("nan"), float("inf"), 11.0])
def test_queue_config_built_directly_is_checked_too(n: float) -> None:
    with pytest.raises(ConfigError, match="power exponent n"):
        QueueConfig(model="power", n=n)


def test_declared_ranges_say_what_they_allow() -> None:
    assert LATENCY_NS.describe() == ">= 0 and <= 86400000000000 (ns: 0 to one day)"
    assert QUEUE_POWER_N.describe() == "> 0 and <= 10"
