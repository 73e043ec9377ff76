"""Strategies of one run from command-line words: several, each with its own parameters,
risk limits and instruments.

``hftlab backtest`` passes its words here::

    hftlab backtest mm=one_tick_mm ll=lead_lag \\
        --param mm.max_position=3 --param ll.entry_bps=2.5 \\
        --risk mm.max_open_orders=4 --on mm=SIM/SYN ...

* a strategy word is ``[NAME=]SPEC``: ``SPEC`` a bundled name or ``module:Class``; ``NAME``
  names it in the results (default: the class name) and scopes its options;
* ``--param NAME.key=value`` and ``--risk NAME.limit=value`` go to one strategy (the
  ``NAME.`` may be left out when the run has one strategy); a risk value ``none`` lifts a
  limit; risk values replace the strategy's own defaults one limit at a time;
* ``--on NAME=VENUE/SYMBOL[,VENUE/SYMBOL...]`` limits a strategy to those instruments
  (default: the ones it names itself, else every instrument of the run).

>>> [s.name for s in strategies_from_words(["a=one_tick_mm", "b=one_tick_mm"],
...                                        params=["b.max_position=2"])]
['a', 'b']
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from framework.core.errors import ConfigError
from framework.risk.limits import RiskLimits
from framework.strategy.base import Strategy
from framework.strategy.loader import load_strategy_class


@dataclasses.dataclass
class _Word:
    spec: str  #: as typed: bundled name or module:Class
    cls: type[Strategy]
    name: str
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    risk: dict[str, str] = dataclasses.field(default_factory=dict)
    instruments: list[str] | None = None


def _split_word(word: str) -> tuple[str | None, str]:
    """``NAME=SPEC`` -> (NAME, SPEC); ``SPEC`` -> (None, SPEC)."""
    name, sep, spec = word.partition("=")
    if not sep:
        return None, word
    if not name or not spec or "." in name or "/" in name:
        msg = (
            f"strategy {word!r}: write NAME=STRATEGY (e.g. mm=one_tick_mm) or just STRATEGY; "
            "a name has no '.', '/' or '='"
        )
        raise ConfigError(msg)
    return name, spec


def _pairs(option: str, items: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"{option} {item!r}: write {option} [STRATEGY.]name=value"
            raise ConfigError(msg)
        out.append((key.strip(), value.strip()))
    return out


def _target(option: str, key: str, words: list[_Word]) -> tuple[_Word, str]:
    """The strategy a ``[NAME.]key`` addresses, and the bare key."""
    prefix, dot, rest = key.partition(".")
    if dot:
        hits = [w for w in words if prefix in (w.name, w.spec)]
        if len(hits) == 1:
            return hits[0], rest
        if len(hits) > 1:
            msg = f"{option} {key!r}: {prefix!r} names several strategies; name them NAME=SPEC"
            raise ConfigError(msg)
    if len(words) == 1 and not dot:
        return words[0], key
    names = [w.name for w in words]
    if dot:
        close = difflib.get_close_matches(prefix, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"{option} {key!r}: no strategy named {prefix!r} in this run ({names}){hint}"
    else:
        msg = (
            f"{option} {key!r}: the run has several strategies; scope it to one as "
            f"STRATEGY.{key} (strategies: {', '.join(names)})"
        )
    raise ConfigError(msg)


def _risk_value(name: str, text: str) -> Any:
    low = text.lower()
    if name == "self_trade_prevention":
        if low in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return low in ("1", "true", "yes", "on")
        msg = f"--risk {name}={text!r}: give true or false"
        raise ConfigError(msg)
    if low in ("none", "off", "inf"):
        return None
    try:
        return float(text)
    except ValueError as exc:
        msg = f"--risk {name}={text!r}: give a number, or none to lift the limit"
        raise ConfigError(msg) from exc


def strategies_from_words(
    words: Sequence[str],
    *,
    params: Sequence[str] = (),
    risk: Sequence[str] = (),
    on: Sequence[str] = (),
) -> list[Strategy]:
    """Build the strategies of a run from ``[NAME=]SPEC`` words and scoped options."""
    if not words:
        msg = "name at least one strategy (a bundled name or module:Class)"
        raise ConfigError(msg)
    parsed: list[_Word] = []
    for word in words:
        name, spec = _split_word(word)
        cls = load_strategy_class(spec)
        parsed.append(_Word(spec=spec, cls=cls, name=name or cls.__name__))
    names = [w.name for w in parsed]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        msg = (
            f"two strategies would both be named {dup[0]!r}; name each one, e.g. "
            f"a={parsed[names.index(dup[0])].spec} b=..."
        )
        raise ConfigError(msg)
    for key, value in _pairs("--param", params):
        w, k = _target("--param", key, parsed)
        w.params[k] = value
    for key, value in _pairs("--risk", risk):
        w, k = _target("--risk", key, parsed)
        w.risk[k] = value
    for item in on:
        name, sep, keys = item.rpartition("=")
        w = _target("--on", f"{name}.x" if sep else "x", parsed)[0]
        insts = [k.strip() for k in keys.split(",") if k.strip()]
        bad = [k for k in insts if k.count("/") != 1]
        if not insts or bad:
            msg = f"--on {item!r}: write --on [STRATEGY=]VENUE/SYMBOL[,VENUE/SYMBOL...]"
            raise ConfigError(msg)
        w.instruments = insts
    out = []
    for w in parsed:
        try:
            out.append(_build(w))
        except ConfigError as exc:
            if len(parsed) == 1:
                raise
            msg = f"strategy {w.name}: {exc}"  # which of the run's strategies it was
            raise ConfigError(msg) from exc
    return out


def _build(w: _Word) -> Strategy:
    strategy = w.cls(w.params, name=w.name)
    if w.instruments is not None:
        strategy.instruments = w.instruments
    if w.risk:
        # start from the limits the strategy chose for itself, then replace the ones given
        base = dataclasses.asdict(strategy.risk_limits)
        limits = {k: _risk_value(k, v) for k, v in w.risk.items()}
        strategy.risk_limits = RiskLimits.from_dict({**base, **limits})
    return strategy


def run_instruments(strategies: Sequence[Strategy]) -> list[str]:
    """The instruments the strategies name, in order of appearance (for runs whose data is
    not given separately); an error if one of them trades whatever the run holds."""
    out: list[str] = []
    for s in strategies:
        if s.instruments is None:
            msg = (
                f"strategy {s.name} trades every instrument of the run; name the data: "
                "--instrument VENUE/SYMBOL (repeatable) or --venue V --symbol S"
            )
            raise ConfigError(msg)
        out += [k for k in s.instruments if k not in out]
    return out
