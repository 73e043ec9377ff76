"""Every parameter of every bundled strategy, and every risk limit, has a declared range;
values outside it are refused where they enter, with one line naming the range."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, get_type_hints

import numpy as np
import pytest

from framework.core.errors import ConfigError
from framework.core.ranges import INT64_MAX, Range
from framework.risk.limits import RANGES, RiskLimits
from framework.strategy import Params, param
from framework.strategy.loader import BUNDLED, load_strategy_class
from framework.strategy.spec import strategies_from_words

PARAMS = [
    pytest.param(name, field, id=f"{name}.{field}")
    for name in sorted(BUNDLED)
    for field in load_strategy_class(name).Params.names()
]


def outside(rng: Range, typ: Any) -> list[Any]:
    """Values of the right type just outside ``rng`` (and non-finite ones)."""
    if rng.choices is not None:
        return ["maybe"] if typ is bool else ["not-a-choice", ""]
    if rng.pattern is not None:
        return ["NOSLASH", "", "a/b/c", "A /B"]
    step = 1 if typ is int else 1e-9
    vals: list[Any] = []
    if rng.ge is not None:
        vals += [rng.ge - step, rng.ge - 1000]
    if rng.gt is not None:
        vals += [rng.gt, rng.gt - 1]
    if rng.le is not None:
        vals += [rng.le + step, rng.le + 1000]
    if rng.lt is not None:
        vals += [rng.lt]
    vals = [typ(v) for v in vals if v not in rng.also]
    if typ is float:
        vals += [math.nan, math.inf, -math.inf]
    else:
        vals += [INT64_MAX + 1]
    return vals


def inside(rng: Range, typ: Any) -> list[Any]:
    """Values at the edges of ``rng``."""
    if rng.choices is not None:
        return list(rng.choices)
    if rng.pattern is not None:
        return []
    vals = [v for v in (rng.ge, rng.le) if v is not None] + list(rng.also)
    if rng.gt is not None:
        vals.append(rng.gt + (1 if typ is int else 1e-6))
    return [typ(v) for v in vals]


@pytest.mark.parametrize(("strategy", "field"), PARAMS)
def test_every_parameter_of_every_bundled_strategy_declares_a_range(
    strategy: str, field: str
) -> None:
    params = load_strategy_class(strategy).Params
    rng = params.ranges()[field]
    assert rng is not None, f"{params.__qualname__}.{field}: declare it with param(default, ...)"
    default = getattr(params(), field)
    assert rng.contains(default), f"the default {field}={default!r} is outside {rng.describe()}"


@pytest.mark.parametrize(("strategy", "field"), PARAMS)
def test_out_of_range_values_are_refused_naming_the_range(strategy: str, field: str) -> None:
    cls = load_strategy_class(strategy)
    rng = cls.Params.ranges()[field]
    assert rng is not None
    typ = get_type_hints(cls.Params)[field]
    bad_values = outside(rng, typ)
    assert bad_values
    for bad in bad_values:
        # as typed on the command line, through the API, and by the constructor
        for build in (
            lambda b=bad: strategies_from_words([strategy], params=[f"{field}={b}"]),
            lambda b=bad: cls({field: b}),
            lambda b=bad: cls.Params(**{field: b}),
        ):
            with pytest.raises(ConfigError) as err:
                build()
            text = str(err.value)
            assert "\n" not in text
            assert field in text
            if typ is not bool:  # a bool's refusal is "not a valid bool"
                assert rng.describe() in text, text


@pytest.mark.parametrize(("strategy", "field"), PARAMS)
def test_values_at_the_edges_of_the_range_are_accepted(strategy: str, field: str) -> None:
    cls = load_strategy_class(strategy)
    rng = cls.Params.ranges()[field]
    assert rng is not None
    typ = get_type_hints(cls.Params)[field]
    for good in inside(rng, typ):
        assert rng.check(field, good) is None
        cross = cls.Params.create  # only a cross-field rule may refuse an edge value
        try:
            p = cross({field: good})
        except ConfigError as exc:
            why = str(exc)
        else:
            why = ""
            assert getattr(p, field) == good
        assert "is out of range" not in why


def test_a_params_class_checks_ranges_before_its_own_post_init() -> None:
    seen = []

    class P(Params):
        qty: int = param(1, ge=1)
        cap: int = param(5, ge=1)

        def __post_init__(self) -> None:
            seen.append((self.qty, self.cap))
            if self.qty > self.cap:
                msg = "qty must not exceed cap"
                raise ConfigError(msg)

    with pytest.raises(ConfigError, match=r"qty=0 is out of range: allowed >= 1"):
        P(qty=0)
    assert seen == []  # the range check came first
    with pytest.raises(ConfigError, match="must not exceed cap"):
        P.create({"qty": "9"})
    assert P(qty=np.int64(3)).qty == 3  # numpy numbers are numbers


def test_undeclared_parameters_are_still_type_checked() -> None:
    class P(Params):
        n: int = 1
        x: float = 0.5
        flag: bool = False

    assert P.ranges() == {"n": None, "x": None, "flag": Range(choices=(False, True))}
    for kwargs, needle in (
        ({"n": 1.5}, "n=1.5 is not an int"),
        ({"n": True}, "n=True is not an int"),
        ({"x": "0.1"}, "x='0.1' is not a float"),
        ({"flag": 1}, "flag=1 is not a bool"),
    ):
        with pytest.raises(ConfigError, match=needle):
            P(**kwargs)


@pytest.mark.parametrize(
    ("rng", "value", "ok"),
    [
        (Range(ge=0, also=(-1,)), -1.0, True),
        (Range(ge=0, also=(-1,)), -0.5, False),
        (Range(gt=0, le=1), 1, True),
        (Range(gt=0, le=1), 0, False),
        (Range(ge=0), math.nan, False),
        (Range(), math.inf, False),
        (Range(), INT64_MAX, True),
        (Range(), INT64_MAX + 1, False),
        (Range(ge=0), True, False),
        (Range(ge=0), "1", False),
        (Range(choices=(False, True)), 1, False),
        (Range(pattern=r"[^/]+/[^/]+"), "A/B", True),
        (Range(pattern=r"[^/]+/[^/]+"), "A/B/C", False),
    ],
)
def test_range_membership(rng: Range, value: Any, ok: bool) -> None:
    assert rng.contains(value) is ok


# --- risk limits -------------------------------------------------------------------------------
LIMITS = [f.name for f in dataclasses.fields(RiskLimits) if f.name != "self_trade_prevention"]


def test_every_numeric_risk_limit_declares_a_range() -> None:
    assert sorted(RANGES) == sorted(LIMITS)


@pytest.mark.parametrize(
    ("limit", "value"),
    [
        (limit, value)
        for limit in LIMITS
        # lots and counts: under one denies every order, like zero
        for value in ["-1", "0", "nan", "-inf", *(["0.5"] if RANGES[limit].ge == 1 else [])]
    ],
)
def test_zero_negative_and_non_finite_risk_limits_are_refused(limit: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        strategies_from_words(["one_tick_mm"], risk=[f"{limit}={value}"])
    text = str(err.value)
    assert f"risk limit {limit}=" in text
    assert f"allowed {RANGES[limit].describe()}" in text
    assert "none" in text  # says how to lift a limit instead
    with pytest.raises(ConfigError):
        RiskLimits(**{limit: float(value)})


@pytest.mark.parametrize("limit", LIMITS)
def test_an_infinite_limit_is_written_none(limit: str) -> None:
    # on the command line inf means "no limit"; through the API that is None
    (s,) = strategies_from_words(["one_tick_mm"], risk=[f"{limit}=inf"])
    assert getattr(s.risk_limits, limit) is None
    with pytest.raises(ConfigError, match="None"):
        RiskLimits(**{limit: float("inf")})


@pytest.mark.parametrize("limit", LIMITS)
def test_risk_limits_at_their_lower_edge_or_lifted_are_accepted(limit: str) -> None:
    rng = RANGES[limit]
    edge = rng.ge if rng.ge is not None else 1e-6
    (s,) = strategies_from_words(["one_tick_mm"], risk=[f"{limit}={edge}"])
    assert getattr(s.risk_limits, limit) == edge
    (s,) = strategies_from_words(["one_tick_mm"], risk=[f"{limit}=none"])
    assert getattr(s.risk_limits, limit) is None
