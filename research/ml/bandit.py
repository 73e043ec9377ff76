"""Online choice of a strategy's parameter set per regime: a contextual bandit gating K
instances.

The mechanism: K instances of one strategy class, one per parameter set, run isolated in one
engine (the K-instance support: each has its own account, orders and risk state). A
:class:`Gate` shared by them lets one *arm* trade at a time -- an instance, or, with
``flat_arm``, none -- and re-decides every ``epoch_ns``: its chooser sees the context (the
``regime`` feature of the run's regime model; an extra context while it is not yet defined),
and is told the reward of the arm it ran (that instance's equity change over the epoch). An
instance no longer chosen cancels the orders it placed while it was and is put in the
``reducing`` trading state (the risk checks let only orders that shrink its position
through); its callbacks run only while it still holds a position or working orders: it
winds down, then idles. So the instances' summed PnL
is what trading the chosen sets would have made, fills and fees included, and the same
objects run in a live engine (they are Python strategies; the gate reads only the Context).

Choosers: :class:`ThompsonBandit` (Gaussian Thompson sampling per context; its posterior
goes to and from a JSON file, :func:`save_state` / :func:`load_state`, so a live session
starts from what a walk-forward learned) and :class:`UniformChooser` (the baseline). A gate's
``on_decision`` / ``on_close`` hooks see every decision as it is made: a live session
journals them there (:mod:`live.bandit`), and its replay takes the journaled arms.
:func:`epoch_rewards` turns an ungated run of every set (which is also each set's run alone)
into per-epoch rewards by regime -- the history a bandit starts from in a walk-forward
(:func:`walk_forward_bandit`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import ConfigError
from framework.core.events import EventArray
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.engine.instances import copies
from framework.ingest.base import DayData
from framework.strategy.base import Strategy
from framework.strategy.context import Context
from research.walkforward import WalkForward, WalkForwardSpec, walk_forward, windows

NS = 1_000_000_000
FloatArray = npt.NDArray[np.float64]


class Chooser(Protocol):
    def choose(self, context: int) -> int: ...

    def update(self, context: int, arm: int, reward: float) -> None: ...


@dataclass
class ThompsonBandit:
    """Gaussian Thompson sampling, one posterior per (context, arm).

    Rewards of an arm in a context are taken as normal with an unknown mean (prior
    ``N(prior_mean, noise^2 / prior_weight)``) and a noise variance shared by all arms,
    estimated from every reward seen (``prior_sd`` until there are a few). Each choice
    samples a mean per arm and takes the largest: an arm is tried in proportion to the
    probability that it is the best one in that context."""

    n_arms: int
    n_contexts: int
    prior_mean: float = 0.0
    prior_weight: float = 1.0
    prior_sd: float = 1.0
    seed: int = 0
    n: FloatArray = field(init=False)
    total: FloatArray = field(init=False)
    sq: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        if self.n_arms < 1 or self.n_contexts < 1:
            msg = f"a bandit needs arms and contexts, got {self.n_arms} and {self.n_contexts}"
            raise ConfigError(msg)
        shape = (self.n_contexts, self.n_arms)
        self.n, self.total, self.sq = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.rng = np.random.default_rng(self.seed)

    def noise_sd(self) -> float:
        m = self.n.sum()
        if m < 10:
            return self.prior_sd
        means = np.divide(self.total, self.n, out=np.zeros_like(self.total), where=self.n > 0)
        resid = float((self.sq - self.n * means**2).sum())
        return math.sqrt(max(resid, 0.0) / max(m - np.count_nonzero(self.n), 1.0)) or 1e-9

    def posterior(self, context: int) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation of each arm's mean reward in ``context``."""
        w = self.prior_weight + self.n[context]
        mean = (self.prior_mean * self.prior_weight + self.total[context]) / w
        return mean, self.noise_sd() / np.sqrt(w)

    def choose(self, context: int) -> int:
        mean, sd = self.posterior(context)
        return int(np.argmax(self.rng.normal(mean, sd)))

    def update(self, context: int, arm: int, reward: float) -> None:
        self.n[context, arm] += 1.0
        self.total[context, arm] += reward
        self.sq[context, arm] += reward * reward

    def learn(self, rewards: pl.DataFrame) -> None:
        """Take a history (``context``, ``arm``, ``reward`` rows) as if seen."""
        for c, a, r in rewards.select("context", "arm", "reward").iter_rows():
            self.update(int(c), int(a), float(r))

    def to_state(self) -> dict[str, Any]:
        """What it learned (prior and sufficient statistics), as plain JSON values."""
        return {"n_arms": self.n_arms, "n_contexts": self.n_contexts,
                "prior_mean": self.prior_mean, "prior_weight": self.prior_weight,
                "prior_sd": self.prior_sd, "n": self.n.tolist(), "total": self.total.tolist(),
                "sq": self.sq.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, seed: int = 0) -> ThompsonBandit:
        """A bandit that knows what ``state`` (:meth:`to_state`) holds, drawing with
        ``seed``."""
        b = cls(int(state["n_arms"]), int(state["n_contexts"]),
                prior_mean=float(state["prior_mean"]), prior_weight=float(state["prior_weight"]),
                prior_sd=float(state["prior_sd"]), seed=seed)
        for name in ("n", "total", "sq"):
            arr = np.asarray(state[name], np.float64)
            if arr.shape != b.n.shape or not np.isfinite(arr).all():
                msg = (f"bandit state {name} has shape {arr.shape}, expected {b.n.shape} "
                       "(finite numbers)")
                raise ConfigError(msg)
            setattr(b, name, arr.copy())
        return b


@dataclass
class UniformChooser:
    """Every arm with equal probability, whatever the context (the baseline)."""

    n_arms: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def choose(self, context: int) -> int:
        return int(self.rng.integers(self.n_arms))

    def update(self, context: int, arm: int, reward: float) -> None:
        """Learns nothing."""


@dataclass
class Gate:
    """Which of K gated instances may trade: arm ``k < K`` is instance ``k``, arm ``K``
    (with ``flat_arm``) none. Decides at the first book change of every ``epoch_ns``.

    One gate per run (it holds the run's Contexts); its chooser may go on to the next run
    with what it learned. Contexts are regime codes, ``n_regimes`` while undefined."""

    chooser: Chooser
    n_sets: int
    epoch_ns: int = 60 * NS
    flat_arm: bool = True
    n_regimes: int = 3
    #: one row per epoch: start, context, arm, reward (filled in when the epoch ends)
    log: list[tuple[int, int, int, float]] = field(default_factory=list)
    active: int = -1  #: the arm trading now (-1 before the first decision)
    #: called after each decision with (start, context, arm, reward of the epoch it ended:
    #: NaN at the first); a live session journals it
    on_decision: Callable[[int, int, int, float], None] | None = field(default=None,
                                                                        repr=False)
    #: called when the run's last epoch is closed, with its reward
    on_close: Callable[[float], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.ctxs: dict[int, Context] = {}
        self.strategies: dict[int, Any] = {}
        self._next = -1
        self._start_equity = 0.0

    @property
    def n_arms(self) -> int:
        return self.n_sets + (1 if self.flat_arm else 0)

    def register(self, k: int, ctx: Context, strategy: Any = None) -> None:
        self.ctxs[k] = ctx
        if strategy is not None:
            self.strategies[k] = strategy
        ctx.set_trading_state("reducing")  # nothing trades before the first decision

    def context(self, ctx: Context, inst: int) -> int:
        r = ctx.feature(inst, "regime")
        return self.n_regimes if math.isnan(r) else int(r)

    def _equity(self, arm: int) -> float:
        return self.ctxs[arm].equity() if 0 <= arm < self.n_sets else 0.0

    def tick(self, ctx: Context, inst: int) -> None:
        """At a book change: end the epoch and choose the next arm when one is due."""
        now = ctx.now
        if now < self._next:
            return
        ended = math.nan
        if self.active >= 0:
            reward = self._equity(self.active) - self._start_equity
            start, c, a, _ = self.log[-1]
            self.log[-1] = (start, c, a, reward)
            self.chooser.update(c, a, reward)
            ended = reward
        c = self.context(ctx, inst)
        arm = self.chooser.choose(c)
        if not 0 <= arm < self.n_arms:
            msg = f"the gate's chooser chose arm {arm}; it has arms 0..{self.n_arms - 1}"
            raise ConfigError(msg)
        if arm != self.active:
            if 0 <= self.active < self.n_sets:
                self.ctxs[self.active].set_trading_state("reducing")
                if self.active in self.strategies:
                    self.strategies[self.active].wind_down(self.ctxs[self.active])
            if 0 <= arm < self.n_sets:
                self.ctxs[arm].set_trading_state("active")
        self.active = arm
        self._start_equity = self._equity(arm)
        self.log.append((now, c, arm, math.nan))
        self._next = (now // self.epoch_ns + 1) * self.epoch_ns
        if self.on_decision is not None:
            self.on_decision(now, c, arm, ended)

    def close(self) -> None:
        """End the last epoch (at the end of the run): its reward is what the arm made."""
        if self.active >= 0 and self.log and math.isnan(self.log[-1][3]):
            start, c, a, _ = self.log[-1]
            reward = self._equity(a) - self._start_equity
            self.log[-1] = (start, c, a, reward)
            self.chooser.update(c, a, reward)
            if self.on_close is not None:
                self.on_close(reward)

    def runs(self, k: int, ctx: Context, inst: int) -> bool:
        """Whether instance ``k``'s callbacks run: it is chosen, or still winding down."""
        return k == self.active or ctx.position(inst) != 0 or ctx.open_order_count(inst) > 0

    def table(self) -> pl.DataFrame:
        return pl.DataFrame(self.log, schema={"ts": pl.Int64, "context": pl.Int64,
                                              "arm": pl.Int64, "reward": pl.Float64},
                            orient="row")


def _recording(s: Any, send: Callable[..., int]) -> Callable[..., int]:
    """``send`` (a Context's submit) that notes the ids of orders sent while ``s`` is the
    chosen instance."""

    def sent(*args: Any, **kwargs: Any) -> int:
        oid = send(*args, **kwargs)
        if oid > 0 and s.gate.active == s.arm:
            if len(s.placed) > 64:  # forget finished ones now and then
                s.placed = {o for o in s.placed if s.gate.ctxs[s.arm].is_live(o)}
            s.placed.add(oid)
        return oid

    return sent


def _gated_class(cls: type[Strategy]) -> type[Strategy]:
    """A Python subclass of ``cls`` whose market callbacks go through its gate."""
    if not cls.has_python_path():
        msg = f"{cls.__name__} has no Python callbacks: the gate needs them"
        raise ConfigError(msg)

    def on_start(self: Any, ctx: Context) -> None:
        self.gate.register(self.arm, ctx, self)
        self.placed = set()  # ids of orders sent while this instance was the chosen one
        for name in ("submit", "submit_market"):  # this Context object only
            setattr(ctx, name, _recording(self, getattr(ctx, name)))
        cls.on_start(self, ctx)

    def wind_down(self: Any, ctx: Context) -> None:
        """No longer chosen: cancel what it placed as the chosen one (orders it sends from
        now on pass the risk checks only if they shrink its position)."""
        for oid in self.placed:
            if ctx.is_live(oid):
                ctx.cancel(oid)
        self.placed.clear()

    def on_book(self: Any, ctx: Context, inst: int) -> None:
        self.gate.tick(ctx, inst)
        if self.gate.runs(self.arm, ctx, inst):
            cls.on_book(self, ctx, inst)

    def on_stop(self: Any, ctx: Context) -> None:
        cls.on_stop(self, ctx)
        if self.arm == self.gate.n_sets - 1:  # the last instance stopped: the run is over
            self.gate.close()

    ns: dict[str, Any] = {"compiled": None, "features": True, "on_start": on_start,
                          "wind_down": wind_down, "on_book": on_book, "on_stop": on_stop,
                          "__module__": cls.__module__}
    if cls.on_trade is not Strategy.on_trade:

        def on_trade(self: Any, ctx: Context, inst: int) -> None:
            if self.gate.runs(self.arm, ctx, inst):
                cls.on_trade(self, ctx, inst)

        ns["on_trade"] = on_trade
    return type(f"Gated{cls.__name__}", (cls,), ns)


def gated(
    cls: type[Strategy],
    params: Sequence[Mapping[str, Any]],
    gate: Gate,
    *,
    name: str | None = None,
    risk: Any = None,
) -> list[Strategy]:
    """K instances of ``cls`` (one per parameter set, named as
    :func:`framework.engine.instances.copies` names them) behind ``gate``; run them with
    ``Backtest(..., isolated=True, feature_model=...)`` (or a live engine)."""
    if len(params) != gate.n_sets:
        msg = f"the gate is for {gate.n_sets} parameter sets, got {len(params)}"
        raise ConfigError(msg)
    out = copies(_gated_class(cls), params, name=name or cls.__name__, risk=risk)
    for k, s in enumerate(out):
        s.gate = gate  # type: ignore[attr-defined]
        s.arm = k  # type: ignore[attr-defined]
    return out


# --- a learned posterior as a file --------------------------------------------------------------
STATE_FORMAT = "hftlab-bandit-state-1"


def _plain(sets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Parameter sets as JSON gives them back (so a file's sets compare equal)."""
    return [dict(p) for p in json.loads(json.dumps([dict(p) for p in sets], default=str))]


def save_state(path: str | os.PathLike[str], bandit: ThompsonBandit,
               sets: Sequence[Mapping[str, Any]], *, flat_arm: bool = True) -> Path:
    """Write what ``bandit`` learned about the parameter sets ``sets`` (its arms, in
    order; with ``flat_arm`` one more, "trade none") as JSON, whole or not at all."""
    if bandit.n_arms != len(sets) + (1 if flat_arm else 0):
        msg = (f"the bandit has {bandit.n_arms} arms; {len(sets)} parameter sets"
               f"{' and the flat arm' if flat_arm else ''} make {len(sets) + int(flat_arm)}")
        raise ConfigError(msg)
    out = Path(path)
    tmp = out.with_name(f".tmp-{out.name}")
    doc = {"format": STATE_FORMAT, "sets": _plain(sets), "flat_arm": bool(flat_arm),
           **bandit.to_state()}
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)
    return out


def load_state(path: str | os.PathLike[str], sets: Sequence[Mapping[str, Any]], *,
               flat_arm: bool = True, n_contexts: int = 4) -> dict[str, Any]:
    """The state :func:`save_state` wrote, checked against the sets, arms and contexts
    it is to be used with; anything else is refused in one line."""
    where = Path(path)
    try:
        doc = json.loads(where.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise ValueError(f"format {doc.get('format') if isinstance(doc, dict) else doc!r}")
        ThompsonBandit.from_state(doc)  # every field there and of the right shape
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        msg = (f"{where} is not a bandit state written by research.ml.bandit.save_state "
               f"({type(exc).__name__}: {exc}); give another --bandit-state file")
        raise ConfigError(msg) from exc
    if doc["sets"] != _plain(sets) or bool(doc.get("flat_arm")) != flat_arm:
        msg = (f"{where} was learned for the parameter sets {doc['sets']} (flat arm "
               f"{doc.get('flat_arm')}), not {_plain(sets)} (flat arm {flat_arm}); give the "
               "sets it was learned with, or another --bandit-state file")
        raise ConfigError(msg)
    if int(doc["n_contexts"]) != n_contexts:
        msg = (f"{where} knows {doc['n_contexts']} contexts; this regime model gives "
               f"{n_contexts} (its regimes and 'undefined'): learn it with the same model")
        raise ConfigError(msg)
    return {k: doc[k] for k in ("n_arms", "n_contexts", "prior_mean", "prior_weight",
                                "prior_sd", "n", "total", "sq")}


# --- runs and evaluation -------------------------------------------------------------------
@dataclass(frozen=True)
class DayRun:
    """One day's result: per strategy (set) its PnL and sampled equity."""

    day: dt.date
    pnl: dict[str, float]
    curves: pl.DataFrame  #: strategy, ts, equity
    gate_log: pl.DataFrame | None = None


def run_day(
    instrument: Instrument,
    events: EventArray,
    strategies: Sequence[Strategy],
    day: dt.date,
    *,
    feature_model: Any = None,
    latency: LatencyConfig | None = None,
    sample_ns: int = 10 * NS,
    gate: Gate | None = None,
) -> DayRun:
    """Backtest ``strategies`` isolated on one day; each one's PnL and equity curve."""
    res = Backtest(instruments=[instrument], streams=[[events]], strategies=strategies,
                   isolated=True, sample_ns=sample_ns, feature_model=feature_model,
                   latency=latency or LatencyConfig(entry_ns=NS // 1000, response_ns=NS // 1000)
                   ).run()
    eq = res.equity.filter(pl.col("strategy") != "TOTAL").select("strategy", "ts", "equity")
    last = eq.group_by("strategy").agg(pl.col("equity").sort_by("ts").last())
    pnl = dict(zip(last["strategy"].to_list(), last["equity"].to_list(), strict=True))
    return DayRun(day, pnl, eq, gate.table() if gate is not None else None)


def epoch_rewards(run: DayRun, names: Sequence[str], regimes: pl.DataFrame,
                  epoch_ns: int, *, flat_arm: bool = True) -> pl.DataFrame:
    """Per epoch of an ungated run, every arm's reward (its equity change) and the context at
    the epoch's start (``regimes``: ts, regime as the model gives it; NaN: the extra
    context): rows context, arm, reward -- full information, the history a bandit learns
    from."""
    rows = []
    reg_ts = regimes["ts"].to_numpy()
    reg = regimes["regime"].to_numpy()
    for k, name in enumerate(names):
        c = run.curves.filter(pl.col("strategy") == name).sort("ts")
        ts, eq = c["ts"].to_numpy(), c["equity"].to_numpy()
        if not len(ts):
            continue
        edges = np.arange(ts[0] // epoch_ns * epoch_ns, ts[-1] + epoch_ns, epoch_ns)
        at = np.interp(edges, ts, eq)  # equity at each epoch boundary (sampled curve)
        i = np.clip(np.searchsorted(reg_ts, edges[:-1], "right") - 1, 0, len(reg) - 1)
        ctx = np.where(np.isnan(reg[i]), 3, np.nan_to_num(reg[i])).astype(np.int64)
        rows.append(pl.DataFrame({"context": ctx, "arm": np.full(len(ctx), k),
                                  "reward": np.diff(at)}))
    out = pl.concat(rows) if rows else pl.DataFrame(schema={"context": pl.Int64,
                                                            "arm": pl.Int64,
                                                            "reward": pl.Float64})
    if flat_arm and len(out):
        flat = out.filter(pl.col("arm") == 0).with_columns(pl.lit(len(names)).alias("arm"),
                                                           pl.lit(0.0).alias("reward"))
        out = pl.concat([out, flat.cast(out.schema)])
    return out


def results_table(runs: Sequence[DayRun], keys: Mapping[str, str]) -> tuple[pl.DataFrame,
                                                                             pl.DataFrame]:
    """The walk-forward tables (:mod:`research.walkforward`) of day runs: (key, day, pnl,
    max_drawdown) rows and (key, day, ts, equity) curves; ``keys`` maps a strategy name
    to the key it stands for."""
    rows, curves = [], []
    for r in runs:
        for name, key in keys.items():
            if name not in r.pnl:
                continue
            c = r.curves.filter(pl.col("strategy") == name).sort("ts")
            eq = c["equity"].to_numpy()
            peak = np.maximum.accumulate(np.concatenate([[0.0], eq]))
            dd = float((peak[1:] - eq).max()) if len(eq) else 0.0
            rows.append({"key": key, "day": r.day, "pnl": r.pnl[name], "max_drawdown": dd})
            curves.append(c.select(pl.lit(key).alias("key"), pl.lit(r.day).alias("day"),
                                   "ts", "equity"))
    return pl.DataFrame(rows), pl.concat(curves)


@dataclass
class BanditStudy:
    """A walk-forward of the bandit against fixed sets and uniform random choice."""

    walk: WalkForward  #: the fixed sets' walk-forward (research.walkforward)
    #: one row per (policy, test day): policy, day, window, pnl
    per_day: pl.DataFrame
    #: every epoch of the gated runs: policy, day, ts, context, arm, reward
    choices: pl.DataFrame
    names: tuple[str, ...] = ()
    #: the last window's bandit after its test days: what a live session starts from
    #: (:func:`save_state`)
    bandit: ThompsonBandit | None = None

    def total(self, policy: str) -> float:
        """Out-of-sample PnL of ``policy`` over the test days (random: mean over seeds)."""
        col = pl.col("policy")
        d = self.per_day.filter(col.str.starts_with("random_") if policy == "random"
                                else col == policy)
        if not len(d):
            return math.nan
        sums = d.group_by("policy").agg(pl.col("pnl").sum())["pnl"].to_numpy()
        return float(sums.mean())

    def summary(self) -> dict[str, float]:
        """OOS PnL of the bandit, random choice, the walk-forward's fixed choice and every
        fixed set on the test days (``set_k``; the best of them is the best fixed set in
        hindsight)."""
        out = {p: self.total(p) for p in ("bandit", "random", "walk_forward_fixed")}
        out |= {k: self.total(k) for k in self.names}
        out["best_fixed"] = max(self.total(k) for k in self.names)
        return out


def walk_forward_bandit(
    days: Sequence[DayData],
    cls: type[Strategy],
    params: Sequence[Mapping[str, Any]],
    spec: WalkForwardSpec,
    *,
    epoch_ns: int = 60 * NS,
    flat_arm: bool = True,
    random_seeds: Sequence[int] = (0, 1, 2),
    seed: int = 0,
    latency: LatencyConfig | None = None,
    regime_halflife_ns: int = 20 * NS,
) -> BanditStudy:
    """Walk forward over ``days`` (one instrument's generated or stored days, with their
    instrument): on each window's train days fit the regime model and take every set's
    per-epoch rewards by regime (ungated runs: K isolated copies in one pass, each exactly
    its run alone) as the bandit's history; on its test days run the gated instances with
    the bandit (learning on as it goes) and with uniform random choice. The fixed sets' own
    walk-forward (:func:`research.walkforward.walk_forward` on PnL) gives the set a study
    would have chosen on the train days."""
    from research.ml.regime import fit_regimes

    by_day = {d.date: d for d in days}
    if len(by_day) != len(days):
        msg = "walk_forward_bandit needs one day of data per date"
        raise ConfigError(msg)
    k = len(params)
    names = tuple(f"set_{i}" for i in range(k))
    plain = {f"{cls.__name__}_{i}": names[i] for i in range(k)}
    fixed = {d.date: run_day(d.instrument, d.events, copies(cls, params), d.date,
                             latency=latency) for d in days}
    results, curves = results_table(list(fixed.values()), plain)
    walk = walk_forward(results, curves, spec, objectives="pnl")
    rows: list[dict[str, Any]] = []
    logs: list[pl.DataFrame] = []
    bandit: ThompsonBandit | None = None
    for w in windows(sorted(by_day), spec):
        model = fit_regimes([by_day[d].events for d in w.train], halflife_ns=regime_halflife_ns)
        fm = model.feature_model()
        history = []
        for d in w.train:
            pred, _ = model.predict(by_day[d].events)
            reg = pl.DataFrame({"ts": by_day[d].events["local_ts"], "regime": pred})
            history.append(epoch_rewards(fixed[d], list(plain), reg, epoch_ns,
                                         flat_arm=flat_arm))
        hist = pl.concat(history)
        n_arms = k + (1 if flat_arm else 0)
        sd = float(np.std(hist["reward"].to_numpy())) or 1.0
        bandit = ThompsonBandit(n_arms, 4, prior_sd=sd, seed=seed + w.index)
        bandit.learn(hist)
        pick = walk.windows.filter(pl.col("window") == w.index)["key"][0]
        policies: list[tuple[str, Chooser]] = [("bandit", bandit)]
        policies += [(f"random_{s}", UniformChooser(n_arms, seed=s)) for s in random_seeds]
        for d in w.test:
            day = by_day[d]
            for name, chooser in policies:
                gate = Gate(chooser, k, epoch_ns=epoch_ns, flat_arm=flat_arm)
                run = run_day(day.instrument, day.events, gated(cls, params, gate), d,
                              feature_model=fm, latency=latency, gate=gate)
                rows.append({"policy": name, "day": d, "window": w.index,
                             "pnl": sum(run.pnl.values())})
                if run.gate_log is not None:
                    logs.append(run.gate_log.with_columns(pl.lit(name).alias("policy"),
                                                          pl.lit(d).alias("day")))
            rows.append({"policy": "walk_forward_fixed", "day": d, "window": w.index,
                         "pnl": fixed[d].pnl[f"{cls.__name__}_{names.index(pick)}"]})
            rows += [{"policy": names[i], "day": d, "window": w.index,
                      "pnl": fixed[d].pnl[f"{cls.__name__}_{i}"]} for i in range(k)]
    return BanditStudy(walk, pl.DataFrame(rows), pl.concat(logs) if logs else pl.DataFrame(),
                       names, bandit)


__all__ = [
    "BanditStudy",
    "Chooser",
    "DayRun",
    "Gate",
    "ThompsonBandit",
    "UniformChooser",
    "epoch_rewards",
    "gated",
    "load_state",
    "results_table",
    "run_day",
    "save_state",
    "walk_forward_bandit",
]
