"""Signals to screen: functions of bars and parameters to entries and exits.

A signal is ``fn(bars, **params) -> (long_entries, long_exits, short_entries, short_exits)``:
four boolean arrays (numpy, polars or pandas; one value per bar) over the bars of
:func:`research.screen.bars.bars`. Row ``i`` may use bars ``0..i`` only: a bar is known at
its end, and the screen trades at that bar's close. Its parameters are declared as a
:class:`~framework.strategy.Params` class (types and allowed ranges), so ``--space`` words
are checked by the same parser ``hftlab optimize`` uses (:class:`research.space.Space`).

Built in (each holds a position ``hold`` bars, flat at the end of each day):

=================== =====================================================================
``imbalance``       long when the touch imbalance > ``threshold``, short when < -threshold
``trade_flow``      signed volume / volume over the last ``window`` bars beyond
                    ``threshold`` (at least ``min_trades`` trades): follow it
                    (``momentum``) or fade it (``reversion``); out early when it turns
``micro_reversion`` z-score of the microprice against the mid's rolling mean and standard
                    deviation over ``window`` bars: short above ``z``, long below -z
``breakout``        long when the close tops the high of the ``lookback`` bars before,
                    short when it falls below their low
=================== =====================================================================

A user signal is ``module:function``; its parameters are its ``Params`` attribute (a
Params class) when it has one, else its keyword parameters with defaults (their types are
the defaults' types).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.core.errors import ConfigError
from framework.strategy import Params, param
from framework.strategy.loader import import_attr

BoolArray = npt.NDArray[np.bool_]
Signals = tuple[BoolArray, BoolArray, BoolArray, BoolArray]
SignalFn = Callable[..., Any]


# --- holding a position for a number of bars ------------------------------------------------
@njit(cache=True)
def _hold(direction, hold, day_end, reverse_exit):
    n = direction.shape[0]
    le = np.zeros(n, np.bool_)
    lx = np.zeros(n, np.bool_)
    se = np.zeros(n, np.bool_)
    sx = np.zeros(n, np.bool_)
    pos = 0
    age = 0
    for i in range(n):
        if pos != 0:
            age += 1
            if age >= hold or day_end[i] or (reverse_exit and direction[i] == -pos):
                if pos > 0:
                    lx[i] = True
                else:
                    sx[i] = True
                pos = 0
            continue
        if direction[i] != 0 and not day_end[i]:
            pos = 1 if direction[i] > 0 else -1
            age = 0
            if pos > 0:
                le[i] = True
            else:
                se[i] = True
    return le, lx, se, sx


def day_ends(bars: pl.DataFrame) -> BoolArray:
    """True at the last bar of each day (UTC date of ``ts``) that another day follows. The
    last bar of all is not marked: a strategy computing its signals as the bars arrive
    cannot know that no bar follows, and a row must read the same either way."""
    day = bars.select(pl.from_epoch("ts", time_unit="ns").dt.date())["ts"]
    out = (day != day.shift(-1)).fill_null(False).to_numpy()
    return np.asarray(out, dtype=np.bool_)


def hold_for(
    bars: pl.DataFrame, direction: npt.ArrayLike, hold: int, *, reverse_exit: bool = False
) -> Signals:
    """Entries where ``direction`` is +1 (long) or -1 (short) while flat, each position
    exited ``hold`` bars later, at the last bar of its day (:func:`day_ends`), or
    (``reverse_exit``) when ``direction`` points the other way; no entry on a day's last
    bar. A helper for signals
    that trade on a condition and leave on a timer, as the bundled takers do."""
    d = np.nan_to_num(np.asarray(direction, dtype=np.float64)).astype(np.int8)
    if len(d) != bars.height:
        msg = f"direction has {len(d)} values for {bars.height} bars"
        raise ConfigError(msg)
    return _hold(d, int(hold), day_ends(bars), bool(reverse_exit))


def _sign(cond_long: Any, cond_short: Any) -> npt.NDArray[np.int8]:
    lo = np.asarray(cond_long, dtype=np.float64)
    sh = np.asarray(cond_short, dtype=np.float64)
    return (np.nan_to_num(lo) > 0).astype(np.int8) - (np.nan_to_num(sh) > 0).astype(np.int8)


# --- built-ins --------------------------------------------------------------------------
class ImbalanceParams(Params):
    threshold: float = param(0.5, gt=0, lt=1, note="a touch imbalance")
    hold: int = param(10, ge=1, note="bars")


def imbalance(bars: pl.DataFrame, *, threshold: float = 0.5, hold: int = 10) -> Signals:
    """Long when the touch imbalance at the bar's end is above ``threshold``, short below
    ``-threshold``; out after ``hold`` bars."""
    imb = bars["imbalance"].to_numpy()
    return hold_for(bars, _sign(imb > threshold, imb < -threshold), hold)


class TradeFlowParams(Params):
    window: int = param(10, ge=1, note="bars")
    threshold: float = param(0.5, gt=0, le=1, note="a flow imbalance")
    min_trades: int = param(1, ge=0, note="trades in the window")
    hold: int = param(10, ge=1, note="bars")
    mode: str = param("momentum", choices=("momentum", "reversion"))


def trade_flow(
    bars: pl.DataFrame,
    *,
    window: int = 10,
    threshold: float = 0.5,
    min_trades: int = 1,
    hold: int = 10,
    mode: str = "momentum",
) -> Signals:
    """Signed volume over volume of the last ``window`` bars; beyond ``threshold`` (with at
    least ``min_trades`` trades) follow it (momentum) or fade it (reversion)."""
    buy, sell = pl.col("buy_volume"), pl.col("sell_volume")
    f = bars.select(
        (buy - sell).rolling_sum(window, min_samples=1).alias("s"),
        (buy + sell).rolling_sum(window, min_samples=1).alias("v"),
        pl.col("n_trades").rolling_sum(window, min_samples=1).alias("n"),
    )
    v = f["v"].to_numpy().astype(np.float64)
    ratio = np.divide(f["s"].to_numpy(), v, out=np.zeros_like(v), where=v > 0)
    enough = f["n"].to_numpy() >= max(min_trades, 1)
    d = _sign(enough & (ratio >= threshold), enough & (ratio <= -threshold))
    if mode == "reversion":
        d = -d
    return hold_for(bars, d, hold, reverse_exit=True)


class MicroReversionParams(Params):
    window: int = param(60, ge=2, note="bars")
    z: float = param(2.0, gt=0, note="standard deviations")
    hold: int = param(10, ge=1, note="bars")


def micro_reversion(
    bars: pl.DataFrame, *, window: int = 60, z: float = 2.0, hold: int = 10
) -> Signals:
    """z = (microprice - rolling mean of the mid) / rolling std of the mid, over ``window``
    bars up to this one: short when z > ``z`` (expect the microprice back down), long when
    z < -z."""
    f = bars.select(
        pl.col("close").rolling_mean(window).alias("m"),
        pl.col("close").rolling_std(window).alias("s"),
        pl.col("microprice"),
    )
    s = f["s"].to_numpy()
    score = np.divide(
        f["microprice"].to_numpy() - f["m"].to_numpy(), s, out=np.zeros_like(s), where=s > 0
    )
    return hold_for(bars, _sign(score < -z, score > z), hold)


class BreakoutParams(Params):
    lookback: int = param(60, ge=1, note="bars")
    hold: int = param(10, ge=1, note="bars")


def breakout(bars: pl.DataFrame, *, lookback: int = 60, hold: int = 10) -> Signals:
    """Long when the close is above the highest high of the ``lookback`` bars before this
    one, short when below their lowest low."""
    f = bars.select(
        pl.col("close"),
        pl.col("high").rolling_max(lookback).shift(1).alias("hi"),
        pl.col("low").rolling_min(lookback).shift(1).alias("lo"),
    )
    c = f["close"].to_numpy()
    return hold_for(bars, _sign(c > f["hi"].to_numpy(), c < f["lo"].to_numpy()), hold)


# --- the registry -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Signal:
    """A signal, its parameters' declaration and the bundled strategy it maps to (if any)."""

    name: str
    fn: SignalFn
    Params: type[Params]  #: the name research.space.Space reads
    #: the bundled strategy that trades the same idea tick by tick (``--to-strategy``)
    strategy: str | None = None

    @property
    def __name__(self) -> str:  # what research.space's messages call it
        return self.name

    def __call__(self, bars: pl.DataFrame, values: dict[str, Any]) -> Signals:
        """The four boolean arrays for one parameter set, checked."""
        full = self.Params.create(values).as_dict()
        try:
            out = self.fn(bars, **full)
        except ConfigError:
            raise
        except Exception as exc:
            msg = f"signal {self.name} failed on {values}: {type(exc).__name__}: {exc}"
            raise ConfigError(msg) from exc
        return _checked(self.name, out, bars.height)


BUILTIN: Final[dict[str, Signal]] = {
    s.name: s
    for s in (
        Signal("imbalance", imbalance, ImbalanceParams, "imbalance_taker"),
        Signal("trade_flow", trade_flow, TradeFlowParams, "trade_flow"),
        Signal("micro_reversion", micro_reversion, MicroReversionParams),
        Signal("breakout", breakout, BreakoutParams),
    )
}


def _checked(name: str, out: Any, n: int) -> Signals:
    if not (isinstance(out, tuple | list) and len(out) == 4):
        msg = (
            f"signal {name} returned {type(out).__name__}; it must return four boolean "
            "arrays (long_entries, long_exits, short_entries, short_exits)"
        )
        raise ConfigError(msg)
    arrays = []
    names = ("long_entries", "long_exits", "short_entries", "short_exits")
    for what, a in zip(names, out, strict=True):
        arr = np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a)
        if arr.shape != (n,):
            msg = f"signal {name}: {what} has shape {arr.shape}, the bars are ({n},)"
            raise ConfigError(msg)
        if arr.dtype != np.bool_:
            msg = f"signal {name}: {what} is {arr.dtype}, not boolean"
            raise ConfigError(msg)
        arrays.append(arr)
    return arrays[0], arrays[1], arrays[2], arrays[3]


_TYPES = (bool, int, float, str)


def _params_of(fn: SignalFn, where: str) -> type[Params]:
    """The Params of a user function: its ``Params`` attribute, or its keyword defaults."""
    declared = getattr(fn, "Params", None)
    if isinstance(declared, type) and issubclass(declared, Params):
        return declared
    fields: dict[str, Any] = {}
    notes: dict[str, type] = {}
    for i, (name, p) in enumerate(inspect.signature(fn).parameters.items()):
        if i == 0:
            continue  # the bars
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty or type(p.default) not in _TYPES:
            msg = (
                f"signal {where}: parameter {name!r} needs a default of type bool, int, float "
                "or str (or give the function a Params class)"
            )
            raise ConfigError(msg)
        notes[name] = type(p.default)
        fields[name] = dataclasses.field(default=p.default)
    ns: dict[str, Any] = {"__annotations__": notes, "__module__": __name__, **fields}
    return type(f"{getattr(fn, '__name__', 'signal')}_Params", (Params,), ns)


def load_signal(spec: str) -> Signal:
    """A built-in name or ``module:function``; a clear :class:`ConfigError` otherwise."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        close = difflib.get_close_matches(spec, list(BUILTIN), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = (
            f"unknown signal {spec!r}{hint}: give a built-in ({', '.join(BUILTIN)}) or a "
            "user function as module:function"
        )
        raise ConfigError(msg)
    mod_name, _, fn_name = spec.partition(":")
    fn = import_attr(mod_name, fn_name, what=f"signal {spec}")
    if not callable(fn):
        msg = f"signal {spec}: module {mod_name} has no function {fn_name!r}"
        raise ConfigError(msg)
    return Signal(spec, fn, _params_of(fn, spec))


def signal_matrix(
    signal: Signal, bars: pl.DataFrame, sets: Sequence[dict[str, Any]]
) -> tuple[npt.NDArray[np.bool_], ...]:
    """The four signals of every set, as (bars x sets) boolean matrices."""
    n, k = bars.height, len(sets)
    mats = tuple(np.zeros((n, k), np.bool_) for _ in range(4))
    for j, values in enumerate(sets):
        for m, a in zip(mats, signal(bars, values), strict=True):
            m[:, j] = a
    return mats


__all__ = [
    "BUILTIN",
    "Signal",
    "day_ends",
    "hold_for",
    "load_signal",
    "signal_matrix",
]
