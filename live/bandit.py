"""The bandit in a live session: K isolated instances of one strategy behind the gate of
:mod:`research.ml.bandit`, each of its decisions journaled and, in a replay, taken from the
journal.

``hftlab live STRATEGY --bandit SETS.json --feature-model MODEL.npz`` runs one instance per
parameter set (the strategy's ``--param`` values with each set's values over them) in the
live engine, isolated exactly as in a backtest (each its own orders, risk state and
positions). The gate lets one instance trade per epoch (or, the extra arm, none) and
re-chooses at the first book change of every epoch from the ``regime`` feature, by Thompson
sampling; ``--bandit-state FILE`` starts the chooser from what a walk-forward learned
(:func:`research.ml.bandit.save_state`) and keeps what the session learned there at its end.

Parity. A choice is random; the journal keeps it. Every decision -- the epoch's start, its
context (the regime code), the arm, the reward of the epoch it ended -- is a ``KIND_GATE``
record written as the gate decides, before any order of the chosen instance (an order is
flushed to the journal before it is sent, and the decision is ahead of it); the last
epoch's close is one more at the session's end. A replay (``hftlab journal parity``,
``journal replay``, crash recovery) builds the same instances and gate and takes the
journaled arms in order: it never draws. It checks each decision's start, context and
reward against the journal's, and a difference fails parity with both sides shown. The
chooser still learns every reward, so a recovered session goes on from the posterior the
crashed one had, with the arm it had chosen. A decision the crashed run made but never
journaled (it died first, so no order of that epoch's instance left the process) is drawn
anew when recovery reaches it and journaled as the resumed session's journal opens.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framework.core.errors import ConfigError
from framework.core.jsonfile import read_json
from framework.engine.config import parse_duration
from framework.engine.instances import copies
from framework.risk.limits import RiskLimits
from framework.strategy.base import Strategy
from live.journal import Record
from live.runner import KIND_GATE
from research.ml.bandit import Gate, ThompsonBandit, gated, load_state, save_state

log = logging.getLogger("hftlab.live.bandit")


def read_sets(path: str | Path) -> list[dict[str, Any]]:
    """``--bandit FILE``: a JSON list of parameter sets (objects of names and values)."""
    p = Path(path)
    data = read_json(p, "--bandit", "a list of parameter sets [{...}, ...]")
    if (not isinstance(data, list) or not data
            or not all(isinstance(d, dict) for d in data)):
        msg = (f"--bandit {p}: give a non-empty JSON list of parameter sets, e.g. "
               '[{"max_position": 1}, {"max_position": 5}]')
        raise ConfigError(msg)
    return [dict(d) for d in data]


@dataclass(frozen=True)
class BanditSpec:
    """What a bandit session is: its sets, epoch and flat arm, and where its chooser
    started (the journal's session record carries all of it, so a replay needs no file)."""

    sets: tuple[dict[str, Any], ...]
    epoch_ns: int = 60_000_000_000
    flat_arm: bool = True
    seed: int = 0  #: the chooser's draws (journaled; a replay never draws)
    #: the chooser's posterior at the start (ThompsonBandit.to_state), None: the prior
    state: dict[str, Any] | None = None
    #: each instance's risk limits when they differ from the strategy's (promotion)
    risk_limits: tuple[dict[str, Any], ...] | None = None

    def same_session(self, other: BanditSpec) -> bool:
        """Whether ``other`` runs the same arms on the same epochs."""
        return (json.dumps(list(self.sets), sort_keys=True, default=str)
                == json.dumps(list(other.sets), sort_keys=True, default=str)
                and self.epoch_ns == other.epoch_ns and self.flat_arm == other.flat_arm)

    def to_meta(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_meta(cls, m: Mapping[str, Any]) -> BanditSpec:
        lim = m.get("risk_limits")
        return cls(sets=tuple(dict(s) for s in m["sets"]), epoch_ns=int(m["epoch_ns"]),
                   flat_arm=bool(m["flat_arm"]), seed=int(m["seed"]), state=m.get("state"),
                   risk_limits=None if lim is None else tuple(dict(x) for x in lim))

    @classmethod
    def from_args(cls, sets_file: str, *, epoch: str = "60s", state_file: str | None = None,
                  seed: int | None = None, n_contexts: int) -> BanditSpec:
        """The spec ``--bandit FILE [--bandit-epoch D] [--bandit-state FILE]
        [--bandit-seed N]`` give (a state file that does not exist yet: the prior)."""
        sets = read_sets(sets_file)
        epoch_ns = parse_duration(epoch)
        if epoch_ns <= 0:
            msg = f"--bandit-epoch {epoch}: give a positive duration, e.g. 60s"
            raise ConfigError(msg)
        state = None
        if state_file and Path(state_file).exists():
            state = load_state(state_file, sets, n_contexts=n_contexts)
        return cls(sets=tuple(sets), epoch_ns=epoch_ns,
                   seed=secrets.randbits(62) if seed is None else int(seed), state=state)


class _Scripted:
    """The gate's chooser in a replay: the journaled arms, in order; what it is told goes
    to the session's own chooser."""

    def __init__(self, owner: LiveBandit) -> None:
        self.owner = owner

    def choose(self, context: int) -> int:
        return self.owner.scripted_arm(context)

    def update(self, context: int, arm: int, reward: float) -> None:
        self.owner.learner.update(context, arm, reward)


def _row(ts: int, context: int, arm: int, reward: float) -> dict[str, Any]:
    return {"ts": int(ts), "context": int(context), "arm": int(arm),
            "reward": None if math.isnan(reward) else float(reward)}


def _show(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "nothing"
    return ", ".join(f"{k}={row.get(k)}" for k in ("ts", "context", "arm", "reward")
                     if k in row)


class LiveBandit:
    """A runner's gated instances, their gate and its chooser (see the module)."""

    def __init__(self, spec: BanditSpec, template: Strategy, *, n_regimes: int) -> None:
        self.spec = spec
        n_arms = len(spec.sets) + (1 if spec.flat_arm else 0)
        n_contexts = n_regimes + 1
        if spec.state is not None:
            self.learner = ThompsonBandit.from_state(spec.state, seed=spec.seed)
            if (self.learner.n_arms, self.learner.n_contexts) != (n_arms, n_contexts):
                msg = (f"the bandit state has {self.learner.n_arms} arms and "
                       f"{self.learner.n_contexts} contexts; this session has {n_arms} and "
                       f"{n_contexts}")
                raise ConfigError(msg)
        else:
            self.learner = ThompsonBandit(n_arms, n_contexts, seed=spec.seed)
        self.gate = Gate(self.learner, len(spec.sets), epoch_ns=spec.epoch_ns,
                         flat_arm=spec.flat_arm, n_regimes=n_regimes,
                         on_decision=self._decided, on_close=self._closed)
        self.cls = type(template)
        self.name = template.name
        base = template.params.as_dict()
        self.params = [{**base, **p} for p in spec.sets]
        self.risk = template.risk_limits
        self.strategies = gated(self.cls, self.params, self.gate, name=self.name,
                                risk=self.risk)
        if spec.risk_limits is not None:
            for s, lim in zip(self.strategies, spec.risk_limits, strict=True):
                s.risk_limits = RiskLimits.from_dict(lim)
        self.runner: Any = None
        self.decisions = 0  #: decisions made (live, or replayed)
        self.script: collections.deque[dict[str, Any]] | None = None  #: replay: to take
        self.journaled = 0  #: replay: decisions the journal holds
        self.live_close: dict[str, Any] | None = None  #: replay: the journal's last close
        self._expect: dict[str, Any] | None = None
        #: decisions drawn in a replay past the journal's last (recovery: journaled later)
        self.fresh: list[dict[str, Any]] = []
        self.difference: str | None = None  #: replay: the first decision unlike the live one
        self.fresh_ok = False

    # --- building ------------------------------------------------------------------------
    def plain(self) -> list[Strategy]:
        """The instances as ungated strategies (same class, parameters, names and limits):
        what a promotion record is about."""
        out = copies(self.cls, self.params, name=self.name, risk=self.risk)
        for a, b in zip(out, self.strategies, strict=True):
            a.risk_limits = b.risk_limits
        return out

    def take_limits(self, promoted: Sequence[Strategy]) -> None:
        """Each instance takes the risk limits of its promoted counterpart (:meth:`plain`),
        recorded in the spec so a replay builds the same."""
        for s, p in zip(self.strategies, promoted, strict=True):
            s.risk_limits = p.risk_limits
        lim = tuple(dataclasses.asdict(s.risk_limits) for s in self.strategies)
        self.spec = dataclasses.replace(self.spec, risk_limits=lim)

    def bind(self, runner: Any) -> None:
        self.runner = runner

    # --- deciding ------------------------------------------------------------------------
    def _replaying(self) -> bool:
        return self.script is not None

    def _decided(self, ts: int, context: int, arm: int, reward: float) -> None:
        self.decisions += 1
        row = _row(ts, context, arm, reward)
        if self._replaying():
            want = self._expect
            if want is None:
                self.fresh.append(row)
                if not self.fresh_ok and self.difference is None:
                    self.difference = (f"gate decision {self.decisions}: live: nothing; "
                                       f"replay: {_show(row)}")
            elif self.difference is None and any(want.get(k) != row[k] for k in row):
                self.difference = (f"gate decision {self.decisions}: live: {_show(want)}; "
                                   f"replay: {_show(row)}")
            return
        log.info("bandit: epoch from %d: regime %d -> arm %d (%s)", ts, context, arm,
                 self.arm_name(arm))
        j = None if self.runner is None else self.runner.journal
        if j is not None:
            j.append(KIND_GATE, json.dumps(row).encode(), ts=ts)

    def _closed(self, reward: float) -> None:
        row = {"close": True, "reward": None if math.isnan(reward) else float(reward)}
        if self._replaying():
            want = self.live_close
            if want is not None and want != row and self.difference is None:
                self.difference = (f"gate close: live: reward={want.get('reward')}; replay: "
                                   f"reward={row['reward']}")
            return
        j = None if self.runner is None else self.runner.journal
        if j is not None:
            j.append(KIND_GATE, json.dumps(row).encode())

    def arm_name(self, arm: int) -> str:
        if 0 <= arm < len(self.spec.sets):
            return f"{self.strategies[arm].name} {json.dumps(self.spec.sets[arm], default=str)}"
        return "flat: no instance trades"

    # --- replaying -----------------------------------------------------------------------
    def replay_from(self, records: Sequence[Record], *, fresh_ok: bool = False) -> None:
        """Take the arms from the journal's gate records from now on (a replay);
        ``fresh_ok`` (recovery): past the last one, draw (the crash came before it was
        journaled), else a decision the session never made is a difference."""
        self.fresh_ok = fresh_ok
        rows = [json.loads(r.payload) for r in records if r.kind == KIND_GATE]
        self.script = collections.deque(r for r in rows if not r.get("close"))
        self.journaled = len(self.script)
        self.live_close = rows[-1] if rows and rows[-1].get("close") else None
        self.gate.chooser = _Scripted(self)

    def scripted_arm(self, context: int) -> int:
        if self.script:
            self._expect = self.script.popleft()
            return int(self._expect["arm"])
        # past the journal's last decision: the crashed run made it but never journaled it
        # (recovery), or the replay decides more than the session did (parity: a difference)
        self._expect = None
        return self.learner.choose(context)

    def check(self) -> str | None:
        """After a replay: the first decision unlike the journal's, or one the journal
        holds and the replay never made."""
        if self.difference is not None:
            return self.difference
        if self.script:
            n = self.journaled - len(self.script) + 1
            return f"gate decision {n}: live: {_show(self.script[0])}; replay: nothing"
        return None

    def resume(self) -> None:
        """After recovery: choose live again, from the posterior the replay rebuilt (draws
        seeded by the session's seed and the decisions so far, not a repeat of the first)."""
        self.gate.chooser = self.learner
        self.script = None
        self.learner.rng = np.random.default_rng([self.spec.seed, self.decisions])
        log.warning("bandit: resumed after %d decision(s) with arm %d (%s)", self.decisions,
                    self.gate.active, self.arm_name(self.gate.active))

    def journal_pending(self) -> None:
        """Journal the decisions recovery drew past the journal's end (once it is open)."""
        j = None if self.runner is None else self.runner.journal
        if j is None:
            return
        for row in self.fresh:
            j.append(KIND_GATE, json.dumps(row).encode(), ts=row["ts"])
        self.fresh.clear()

    # --- the end ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """What the chooser knows now (after the session) as a ``--bandit-state`` file."""
        return save_state(path, self.learner, self.spec.sets, flat_arm=self.spec.flat_arm)

    def summary(self) -> dict[str, Any]:
        arms = [a for _, _, a, _ in self.gate.log]
        return {"active": self.gate.active, "decisions": len(arms),
                "chosen": {self.arm_name(a): arms.count(a) for a in sorted(set(arms))},
                "reward": float(np.nansum([r for *_, r in self.gate.log])) if arms else 0.0}


def session_strategies(meta: Mapping[str, Any],
                       feature_model: Any) -> tuple[list[Strategy], LiveBandit | None]:
    """The strategies of a journaled session (from its record): as the words say, or, in a
    bandit session, the gated instances and their bandit."""
    from framework.strategy.spec import strategies_from_words

    strategies = strategies_from_words(meta["strategy"], params=meta["param"],
                                       risk=meta["risk"])
    b = meta.get("bandit")
    if b is None:
        return strategies, None
    if feature_model is None:
        msg = "the session record has a bandit but no feature model; not a runner's journal?"
        raise ConfigError(msg)
    lb = LiveBandit(BanditSpec.from_meta(b), strategies[0],
                    n_regimes=len(feature_model.label_names))
    return list(lb.strategies), lb


__all__ = ["BanditSpec", "LiveBandit", "read_sets", "session_strategies"]
