"""Promotion gates: backtest out of sample -> paper -> live with capital limits.

A strategy class with one full parameter set (its *key*, :func:`research.space.params_key`,
the key an optimisation study gives the set) has one promotion record:
``promotion-<Class>-<key>.json`` in a records folder -- by default the folder that holds the
session journals (``--journal DIR``'s parent), so the record sits beside them. The record is
append-only: every gate check, passed or failed, forced or not, and every forced live start
is one entry of its ``history`` (who, when, the command, the rule, the evidence); a gate is
passed when its latest entry passed. It is rewritten whole (temporary file, fsync, rename)
under an exclusive lock, and a rewrite that would not keep the history it read is refused.

Gates, in order (a gate needs the ones before it):

1. ``backtest``: an optimisation study (``hftlab optimize ... --walk-forward``) of the same
   strategy class whose parameter sets include this one; the study's stitched
   walk-forward out-of-sample Sharpe ratio must be above ``min_oos_sharpe`` (default 0)
   and this set must be the study's choice: its selected set (best over all days) or the
   last walk-forward window's choice (what the procedure would trade next).
2. ``paper``: a ``hftlab live --paper --journal DIR`` session that ran this strategy with
   this parameter set, made decisions, and whose journal replays to the same decisions one
   for one (:func:`live.replay.parity` is run here; nothing in the journal is trusted).
3. ``live``: capital limits, max position (lots) and max notional (currency per order),
   both given. ``hftlab live`` without ``--paper`` refuses to start a strategy whose record
   lacks a passed gate (``--force --reason`` overrides, recorded), and puts the limits into
   the strategy's compiled risk checks (the smaller of the record's and ``--risk``'s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import getpass
import hashlib
import json
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.core.errors import ConfigError, HftlabError
from framework.core.jsonfile import read_json
from framework.strategy.base import Strategy
from framework.strategy.loader import load_strategy_class

log = logging.getLogger("hftlab.live.promote")

GATES = ("backtest", "paper", "live")
VERSION = 1


class PromotionError(HftlabError):
    """A live start refused: the strategy's promotion record lacks a passed gate."""


@dataclass(frozen=True)
class Candidate:
    """A strategy class with one full parameter set: what a record is about."""

    strategy: str  #: ``module:Class``
    params: dict[str, Any]  #: every parameter, defaults included
    key: str  #: the set's key, as an optimisation study names it

    @classmethod
    def of(cls, strategy: Strategy) -> Candidate:
        from research.evaluate import strategy_path
        from research.space import params_key

        p = strategy.params
        return cls(strategy_path(type(strategy)), _plain(p.as_dict()), params_key(p))

    @classmethod
    def from_file(cls, spec: str, path: str | Path) -> Candidate:
        """``spec`` (bundled name or module:Class) with the parameters of a JSON file
        (``{"name": value, ...}``; missing names take their defaults)."""
        values = read_params(path)
        scls = load_strategy_class(spec)
        return cls.of(scls(scls.Params.create(values)))

    @property
    def class_name(self) -> str:
        return self.strategy.rpartition(":")[2]

    def record_path(self, folder: Path) -> Path:
        return folder / f"promotion-{self.class_name}-{self.key}.json"


def read_params(path: str | Path) -> dict[str, Any]:
    """A parameter file: one JSON object of names and values."""
    p = Path(path)
    data = read_json(p, "--params", '{"name": value, ...}')
    if not isinstance(data, dict):
        kind = type(data).__name__
        msg = f"--params {p}: give one JSON object {{\"name\": value, ...}}, not {kind}"
        raise ConfigError(msg)
    return data


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(d), default=str))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the record -----------------------------------------------------------------------------
@dataclass
class Record:
    """A promotion record as stored."""

    path: Path
    data: dict[str, Any]

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.data.get("history", []))

    def latest(self, gate: str) -> dict[str, Any] | None:
        entries = [e for e in self.history if e.get("gate") == gate]
        return entries[-1] if entries else None

    def passed(self, gate: str) -> bool:
        e = self.latest(gate)
        return bool(e and e.get("passed"))

    def missing(self) -> list[str]:
        """The gates not passed, in order."""
        return [g for g in GATES if not self.passed(g)]

    @property
    def limits(self) -> dict[str, float]:
        """The capital limits of the latest passed live gate."""
        e = self.latest("live")
        if not e or not e.get("passed"):
            return {}
        return {k: float(v) for k, v in e.get("limits", {}).items() if v is not None}


def load_record(folder: Path, cand: Candidate) -> Record | None:
    """The record of ``cand`` in ``folder``, or None; a record that cannot be read, or that
    is about another strategy or set, is a ConfigError naming it."""
    path = cand.record_path(folder)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"promotion record {path} cannot be read ({exc}); restore it from a backup"
        raise ConfigError(msg) from exc
    if not isinstance(data, dict) or not isinstance(data.get("history"), list):
        msg = f"promotion record {path} is not a promotion record (no history list)"
        raise ConfigError(msg)
    if data.get("strategy") != cand.strategy or data.get("key") != cand.key:
        msg = (f"promotion record {path} is about {data.get('strategy')} {data.get('key')}, "
               f"not {cand.strategy} {cand.key}")
        raise ConfigError(msg)
    return Record(path, data)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def who() -> dict[str, Any]:
    """Who and when: the user, host, process, UTC time and command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"by": f"{user}@{socket.gethostname()}", "pid": os.getpid(),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "command": " ".join(sys.argv)}


def append(folder: Path, cand: Candidate, entry: Mapping[str, Any]) -> Record:
    """Add ``entry`` (with who/when) to ``cand``'s record in ``folder`` (created if new),
    written whole: temporary file, fsync, rename, fsync of the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = cand.record_path(folder)
    with _locked(path):
        old = load_record(folder, cand)
        data: dict[str, Any] = old.data if old is not None else {
            "version": VERSION, "strategy": cand.strategy, "key": cand.key,
            "params": cand.params, "history": []}
        before = list(data["history"])
        data["history"] = [*before, {**who(), **entry}]
        if data["history"][: len(before)] != before:  # pragma: no cover - append only
            msg = f"promotion record {path}: refusing a rewrite that drops its history"
            raise ConfigError(msg)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            msg = f"cannot write the promotion record {path}: {exc.strerror or exc}"
            raise ConfigError(msg) from exc
    return Record(path, data)


# --- the gates ----------------------------------------------------------------------------
@dataclass
class Check:
    """The outcome of a gate's check: passed or the reason it did not, and the evidence."""

    gate: str
    passed: bool
    rule: str
    why: str
    evidence: dict[str, Any]

    def entry(self, *, forced: bool = False, reason: str | None = None) -> dict[str, Any]:
        e = {"gate": self.gate, "passed": self.passed or forced, "checked": self.passed,
             "rule": self.rule, "result": self.why, "evidence": self.evidence}
        if forced:
            e |= {"forced": True, "reason": reason}
        return e


def check_backtest(study: str | Path, cand: Candidate, *, min_oos_sharpe: float = 0.0) -> Check:
    """Gate 1 on an optimisation study's folder (study.json, trials.parquet, overfit.json,
    walk_forward.parquet)."""
    import polars as pl

    root = Path(study)
    rule = (f"a walk-forward study of {cand.class_name} with this set: stitched out-of-sample "
            f"Sharpe > {min_oos_sharpe:g}, and this set the study's selected set or the last "
            "window's choice")
    files = {n: root / n for n in ("study.json", "trials.parquet", "overfit.json")}
    absent = [n for n, p in files.items() if not p.is_file()]
    if absent:
        msg = (f"--study {root}: no {', '.join(absent)} there; give the --out folder of a "
               "finished `hftlab optimize ... --walk-forward TRAIN:TEST`")
        raise ConfigError(msg)
    try:
        spec = json.loads(files["study.json"].read_text(encoding="utf-8"))
        over = json.loads(files["overfit.json"].read_text(encoding="utf-8"))
        trials = pl.read_parquet(files["trials.parquet"])
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        msg = f"--study {root}: cannot read the study's files ({exc})"
        raise ConfigError(msg) from exc
    ev: dict[str, Any] = {
        "study": str(root.resolve()), "name": spec.get("study"), "key": cand.key,
        "files": {n: _sha256(p) for n, p in files.items()},
        "selected": over.get("selected"), "deflated_sharpe": over.get("deflated_sharpe"),
        "pbo": over.get("pbo"), "walk_forward": over.get("walk_forward"),
        "n_trials": over.get("n_trials"),
    }

    def fail(why: str) -> Check:
        return Check("backtest", False, rule, why, ev)

    if spec.get("strategy") != cand.strategy:
        return fail(f"the study is of {spec.get('strategy')}, not {cand.strategy}")
    mine = trials.filter(pl.col("key") == cand.key)
    if not len(mine):
        return fail(f"the study never evaluated this parameter set (key {cand.key})")
    row = mine.row(0, named=True)
    ev["in_sample"] = {k: row.get(k) for k in ("state", "n_days", "pnl", "sharpe", "score")}
    wf = over.get("walk_forward")
    if not wf:
        return fail("the study has no walk-forward (run it with --walk-forward TRAIN:TEST)")
    walk_path = root / "walk_forward.parquet"
    last = None
    if walk_path.is_file():
        win = pl.read_parquet(walk_path).sort("window")
        ev["files"]["walk_forward.parquet"] = _sha256(walk_path)
        ev["windows"] = [{k: (str(v) if isinstance(v, dt.date) else v) for k, v in r.items()}
                         for r in win.iter_rows(named=True)]
        last = win["key"][-1] if len(win) else None
    ev["last_choice"] = last
    if cand.key not in (over.get("selected"), last):
        return fail(f"this set (key {cand.key}) is not the study's choice (selected "
                    f"{over.get('selected')}, last walk-forward window {last})")
    oos = (wf.get("out_of_sample") or {}).get("sharpe")
    if oos is None or not math.isfinite(float(oos)):
        return fail("the walk-forward has no out-of-sample Sharpe ratio (no returns)")
    if float(oos) <= min_oos_sharpe:
        return fail(f"out-of-sample Sharpe {float(oos):.4g} <= {min_oos_sharpe:g}")
    return Check("backtest", True, rule,
                 f"out-of-sample Sharpe {float(oos):.4g} > {min_oos_sharpe:g} over "
                 f"{wf.get('windows')} window(s); the set is the study's choice", ev)


def check_paper(journal: str | Path, cand: Candidate) -> Check:
    """Gate 2 on a paper session's journal: it ran this strategy and set, and its decisions
    replay one for one (the parity check is run here)."""
    from framework.strategy.spec import strategies_from_words
    from live.journal import KIND_META, read, segments
    from live.replay import parity

    where = Path(journal)
    rule = ("a `hftlab live --paper` journal of this strategy and set that made decisions "
            "and whose `hftlab journal parity` passes (run now)")
    segs = segments(where) if where.is_dir() else []
    if not segs:
        msg = f"--journal {where}: no journal there; give the --journal DIR of a paper session"
        raise ConfigError(msg)
    meta = None
    for r in read(where):
        if r.kind == KIND_META:
            meta = json.loads(r.payload)
            break
    ev: dict[str, Any] = {
        "journal": str(where.resolve()),
        "segments": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in segs},
    }
    if meta is None:
        return Check("paper", False, rule, "the journal has no session record", ev)
    ev["session"] = {k: meta.get(k) for k in ("strategy", "param", "risk", "mode", "venue",
                                              "symbol", "date", "feed", "paper")}
    if not meta.get("paper"):
        return Check("paper", False, rule, "the journal is not of a --paper session", ev)
    built = strategies_from_words(meta["strategy"], params=meta["param"], risk=meta["risk"])
    if cand not in [Candidate.of(s) for s in built]:
        return Check("paper", False, rule,
                     f"the session did not run {cand.class_name} with this set (key {cand.key})",
                     ev)
    p = parity(where)
    ev["parity"] = {"compared": p.compared, "live": p.live, "ok": p.ok,
                    "first_difference": p.first_difference}
    if not p.ok:
        return Check("paper", False, rule, f"parity failed: {p.first_difference}", ev)
    if p.live == 0:
        return Check("paper", False, rule, "the session made no decision to compare", ev)
    return Check("paper", True, rule, f"parity: {p.compared} decisions equal one for one", ev)


def check_live(record: Record | None, *, max_position: float | None,
               max_notional: float | None) -> Check:
    """Gate 3: the earlier gates passed, and the capital limits given (both, > 0)."""
    rule = "backtest and paper gates passed; max position (lots) and max notional given, > 0"
    limits = {"max_position": max_position, "max_notional": max_notional}
    ev: dict[str, Any] = {"limits": limits}
    if max_position is None or max_notional is None:
        msg = "the live gate needs both --max-position N (lots) and --max-notional X (currency)"
        raise ConfigError(msg)
    from framework.risk.limits import RiskLimits

    RiskLimits(max_position=max_position, max_notional=max_notional)  # ranges checked
    c = Check("live", True, rule, f"limits: max position {max_position:g} lots, max notional "
              f"{max_notional:g}", ev)
    before = [g for g in GATES[:2] if record is None or not record.passed(g)]
    if before:
        c.passed, c.why = False, f"gate(s) {', '.join(before)} not passed yet"
    return c


def run_gates(folder: Path, cand: Candidate, *, study: str | None = None,
              journal: str | None = None, max_position: float | None = None,
              max_notional: float | None = None, force: bool = False,
              reason: str | None = None, min_oos_sharpe: float = 0.0) -> list[Check]:
    """Check the gates asked for, in order, recording each; stops after the first that
    fails (recorded as failed, or as forced with ``force``)."""
    if force and not (reason and reason.strip()):
        msg = "--force needs --reason TEXT (it is recorded)"
        raise ConfigError(msg)
    out: list[Check] = []
    todo: list[str] = []
    if study is not None:
        todo.append("backtest")
    if journal is not None:
        todo.append("paper")
    if max_position is not None or max_notional is not None:
        todo.append("live")
    for gate in todo:
        record = load_record(folder, cand)
        earlier = [g for g in GATES[: GATES.index(gate)] if record is None or not record.passed(g)]
        if gate == "backtest":
            c = check_backtest(study or "", cand, min_oos_sharpe=min_oos_sharpe)
        elif gate == "paper":
            c = check_paper(journal or "", cand)
        else:
            c = check_live(record, max_position=max_position, max_notional=max_notional)
        if c.passed and earlier and gate != "live":
            c.passed, c.why = False, f"gate(s) {', '.join(earlier)} not passed yet ({c.why})"
        if gate == "live":
            c.evidence["limits"] = {"max_position": max_position, "max_notional": max_notional}
        e = c.entry(forced=force and not c.passed, reason=reason)
        if gate == "live":
            e["limits"] = c.evidence["limits"]
        append(folder, cand, e)
        out.append(c)
        if not e["passed"]:
            break
    return out


def records_folder(records: str | None, journal: str | None) -> Path | None:
    """Where the records are: ``--records DIR``, else beside ``--journal DIR``."""
    if records:
        return Path(records)
    if journal:
        return Path(journal).resolve().parent
    return None


def require_live(folder: Path | None, strategies: Sequence[Strategy], *, force: bool,
                 reason: str | None) -> list[str]:
    """Before a live start: each strategy's record must hold every gate passed, else
    PromotionError (unless ``force``, recorded with its reason). The record's capital
    limits go into the strategy's risk limits (the smaller of both); returns them as
    ``NAME.LIMIT=VALUE`` words of ``--risk`` (the journal's session record carries them, so
    a replay builds the same limits)."""
    if force and not (reason and reason.strip()):
        msg = "--force needs --reason TEXT (it is recorded in the promotion record)"
        raise ConfigError(msg)
    if folder is None:
        msg = ("a live start needs the strategy's promotion record: give --journal DIR (the "
               "record sits beside it) or --records DIR, or --paper")
        raise PromotionError(msg)
    words: list[str] = []
    for s in strategies:
        cand = Candidate.of(s)
        rec = load_record(folder, cand)
        missing = list(GATES) if rec is None else rec.missing()
        where = cand.record_path(folder)
        if missing and not force:
            what = ("no promotion record" if rec is None
                    else f"gate(s) {', '.join(missing)} not passed")
            msg = (f"{s.name} ({cand.class_name}, params key {cand.key}) is not promoted to "
                   f"live: {what} in {where}; run `hftlab promote`, or --force --reason TEXT")
            raise PromotionError(msg)
        if missing:
            rec = append(folder, cand, {"gate": "live-start", "passed": True, "forced": True,
                                        "reason": reason, "missing": missing,
                                        "strategy_name": s.name})
            log.warning("%s: started live by --force past gate(s) %s (recorded in %s)",
                        s.name, ", ".join(missing), where)
        limits = rec.limits if rec is not None else {}
        if limits:
            s.risk_limits = _tightened(s, limits)
            words += [f"{s.name}.{k}={getattr(s.risk_limits, k)!r}" for k in sorted(limits)]
        log.info("%s: promoted (%s); capital limits %s", s.name, where, limits or "none")
    return words


def _tightened(s: Strategy, limits: Mapping[str, float]) -> Any:
    """The strategy's limits with the record's capital limits where they are tighter."""
    from framework.risk.limits import RiskLimits

    cur = dataclasses.asdict(s.risk_limits)
    for k, v in limits.items():
        cur[k] = v if cur[k] is None else min(float(cur[k]), v)
    return RiskLimits.from_dict(cur)


__all__ = ["GATES", "Candidate", "Check", "PromotionError", "Record", "append",
           "check_backtest", "check_live", "check_paper", "load_record", "read_params",
           "records_folder", "require_live", "run_gates"]
