"""Parameter studies: grid, random or Optuna TPE search of a strategy's parameters over
stored days, evaluated in batches (:mod:`research.evaluate`) on Dask (:mod:`research.cluster`).

>>> # research.optimize("one_tick_mm", venue="SIM", symbol="SYN", days=[...],
>>> #                   space=["max_position=1:8", "improve=true,false"], method="grid")

A study lives in its ``out`` folder: ``study.json`` (what it evaluates: strategy, data, venue
model, fixed parameters -- a resume with other settings is refused), ``results/`` and
``equity/`` (each (set, day) once, written as batches complete), ``trials.parquet`` (one row
per set or trial, with its statistics over the days), for TPE ``optuna.journal`` (the
Optuna study, unless ``storage`` names an RDB URL), ``overfit.json`` (deflated Sharpe ratio
and PBO, with the walk-forward's figures), ``walk_forward.parquet`` (its windows) and
``report.html`` (:mod:`research.assess`). Running the same study again evaluates
only the (set, day) units it does not hold: an interrupted study resumes, a finished one
costs nothing, a longer one (more trials, more days) adds what is new.

Grid and random studies run day-batches: each day's missing sets, split so every worker has
a share. TPE asks a wave of trials (as many as workers, at least two), evaluates them day by
day -- one batch per day -- and reports each trial's objective so far after every day
(``trial.report(value, step=day_index)``), so Optuna's median pruner stops a bad trial
before its remaining days; a multi-objective study (no pruning in Optuna) is told each
trial's objectives once, and its answer is the Pareto front. A set asked twice (TPE in a
small discrete space does) is evaluated once: its units are found done.

:class:`OptimizeResult` carries what walk-forward, the overfitting statistics and the
report need: ``results`` (every (set, day) row: metrics, the set's ``key`` and parameter
columns), ``equity()`` (each (set, day)'s equity on the return grid), ``daily_pnl()`` (day x
set) and ``returns()`` (every set's intraday returns on the grid, for skew and kurtosis),
and their outcome: ``walk``, ``dsr``, ``pbo``, ``report``.

With ``walk_forward``, a grid or random study still evaluates every set on every day once;
the windows only read the results (:mod:`research.walkforward`). A TPE study also runs one
Optuna study per train window (``NAME.wf0``, ``NAME.wf1``, ...; trials on the train days
only), whose choice is then evaluated on its test days: those rows join ``results`` (a
window's sets may have only some of the days).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from framework.core.errors import ConfigError, StoreError
from framework.engine.config import LatencyConfig, QueueConfig
from framework.risk.limits import RiskLimits
from framework.store.tickstore import TickStore
from framework.strategy import Strategy
from framework.strategy.loader import load_strategy_class
from research.cluster import Batch, Runner, open_runner
from research.evaluate import EvalSpec, ResultsDir, strategy_path
from research.objectives import (
    OBJECTIVES,
    aggregate,
    pareto_front,
    parse_objective,
    ranked,
    set_stats,
    with_score,
)
from research.overfit import PBO, DeflatedSharpe
from research.space import Space, params_key
from research.walkforward import WalkForward, WalkForwardSpec, choose, windows
from research.walkforward import walk_forward as run_walk_forward

Method = Literal["grid", "random", "tpe"]
METHODS: tuple[str, ...] = ("grid", "random", "tpe")
#: most sets replayed together in one task (memory grows with the copies' result rows)
MAX_BATCH = 128
STUDY_FILE = "study.json"
JOURNAL_FILE = "optuna.journal"


@dataclasses.dataclass
class OptimizeResult:
    """The outcome of a study (every table a polars DataFrame).

    ``trials``: one row per evaluated set (grid, random) or Optuna trial (tpe): ``trial``,
    ``key``, ``state`` (complete, pruned, failed), the searched parameters, ``n_days``, the
    statistics over its days (``pnl``, ``sharpe``, ``sortino``, ``max_drawdown``, ``pnl_dd``,
    sums of fees, fills, orders, turnover and denials) and ``score`` (the first objective,
    signed so that higher is better), ranked best first. ``best``: the
    first rows of the complete ones (the Pareto front when there are several objectives).
    ``results``: every (set, day) row of the study (:data:`research.evaluate.RESULTS_SCHEMA`
    plus the searched parameters). ``evaluated``/``reused``: (set, day) units this call ran
    and found done.
    """

    study: str
    out: Path
    strategy: str  #: ``module:Class``
    method: str
    objectives: tuple[str, ...]
    params: tuple[str, ...]
    trials: pl.DataFrame
    best: pl.DataFrame
    pareto: pl.DataFrame
    results: pl.DataFrame
    evaluated: int
    reused: int
    interval_ns: int
    storage: str | None = None
    #: the walk-forward validation (``walk_forward=`` given), else None
    walk: WalkForward | None = None
    #: deflated Sharpe ratio of the best set (None: no set has returns to judge)
    dsr: DeflatedSharpe | None = None
    #: probability of backtest overfitting by CSCV (None: fewer than 2 sets or too few returns)
    pbo: PBO | None = None
    #: why ``dsr`` or ``pbo`` is None, one line each
    overfit_notes: tuple[str, ...] = ()
    #: the study's report.html (None with ``report=False``)
    report: Path | None = None
    #: seconds spent in Optuna (create/load, ask, tell, report, should_prune): its overhead
    optuna_seconds: float = 0.0
    #: the ``hftlab backtest`` command of the study's data and venue model (no searched
    #: parameters): what :meth:`command` extends
    rerun: str = ""

    def equity(self) -> pl.DataFrame:
        """Each (set, day)'s equity on the return grid: key, day, ts, equity."""
        return ResultsDir(self.out).equity_curves()

    def daily_pnl(self) -> pl.DataFrame:
        """PnL per day (rows) and set (one column per key): the daily returns."""
        return self.results.pivot(on="key", index="day", values="pnl").sort("day")

    def returns(self, key: str) -> pl.DataFrame:
        """One set's intraday returns on the grid (day, ts, ret): no return spans a night."""
        from research.assess import intraday_returns

        eq = self.equity().filter(pl.col("key") == key)
        return intraday_returns(eq).select("day", "ts", "ret")

    def command(self, row: Mapping[str, Any], base: str | None = None) -> str:
        """``hftlab backtest`` words that re-run one set: ``base`` (default: the study's own
        backtest command) plus its ``--param``s."""
        head = self.rerun if base is None else base
        return head + "".join(f" --param {p}={_word(row[p])}" for p in self.params)


def _word(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


@dataclasses.dataclass
class _Study:
    """The state of a running study (the client's side)."""

    spec: EvalSpec
    space: Space
    days: list[dt.date]
    res: ResultsDir
    objectives: tuple[str, ...]
    progress: Any
    evaluated: int = 0
    reused: int = 0
    best: float = math.nan
    on_batch: Callable[[int], None] | None = None
    optuna_s: float = 0.0

    @contextlib.contextmanager
    def in_optuna(self) -> Iterator[None]:
        """Count the time of the block as Optuna's (the overhead the benchmark reports)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.optuna_s += time.perf_counter() - t0

    def write(self, batch: Batch, metrics: pl.DataFrame, equity: pl.DataFrame) -> None:
        written = self.res.write(metrics, equity)
        self.evaluated += written.height
        self.progress.update(written.height)
        if self.on_batch is not None:
            self.on_batch(self.evaluated)

    def stats(self, key: str, days: Sequence[dt.date]) -> dict[str, Any]:
        m = self.res.metrics()
        m = m.filter(pl.col("key") == key, pl.col("day").is_in(list(days))).sort("day")
        c = self.res.equity_curves()
        c = c.filter(pl.col("key") == key, pl.col("day").is_in(list(days)))
        return set_stats(m, c, self.spec.interval_ns)

    def show_best(self, value: float) -> None:
        sign = OBJECTIVES[self.objectives[0]]
        if not math.isnan(value) and (math.isnan(self.best) or sign * (value - self.best) > 0):
            self.best = value
            self.progress.set_postfix_str(f"best {self.objectives[0]} {value:,.4g}")


def optimize(
    strategy: str | type[Strategy],
    *,
    venue: str,
    symbol: str,
    days: Sequence[dt.date],
    space: Space | Sequence[str],
    method: Method = "grid",
    trials: int | None = None,
    objective: str | Sequence[str] = "sharpe",
    latency: LatencyConfig | None = None,
    queue: QueueConfig | None = None,
    risk: RiskLimits | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    study: str | None = None,
    out: str | Path | None = None,
    storage: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: str | Path | TickStore | None = None,
    mode: Literal["auto", "compiled", "python"] = "auto",
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool | None = None,
    on_batch: Callable[[int], None] | None = None,
    walk_forward: str | WalkForwardSpec | None = None,
    report: bool = True,
    rerun: str | None = None,
) -> OptimizeResult:
    """Search ``space`` of ``strategy`` on ``venue``/``symbol`` over ``days``.

    ``method``: ``grid`` (every set; ``trials`` is refused: a grid has no count to cap),
    ``random`` (``trials`` distinct seeded sets) or ``tpe`` (``trials`` Optuna trials).
    ``objective``: see :mod:`research.objectives`. ``latency``/``queue``/``risk``/``params``:
    the fixed settings of every run, as ``hftlab backtest`` takes them. ``study``/``out``:
    the study's name and folder (default ``reports/optimize/<study>``); the same pair
    resumes it. ``storage``: an Optuna RDB URL (default: a journal file in ``out``).
    ``workers``/``scheduler``: see :func:`research.cluster.open_runner`. ``progress``: the
    bar on stderr (default: when stderr is a terminal). ``on_batch(evaluated)`` is called
    after each batch is written. ``walk_forward``: ``TRAIN:TEST[:rolling|expanding]``
    (days) -- grid and random choose per train window among the sets they evaluated on
    every day; TPE runs a study of ``trials`` trials on each train window's days and
    evaluates its choice on the test days (see :mod:`research.walkforward`). Every study
    gets its overfitting statistics (deflated Sharpe ratio, PBO; ``overfit.json``) and,
    unless ``report`` is false, ``report.html`` (:mod:`research.assess`), whose re-run
    commands start with ``rerun`` (default: the ``hftlab backtest`` command of the study's
    data and venue model).
    """
    cls = load_strategy_class(strategy) if isinstance(strategy, str) else strategy
    if method not in METHODS:
        msg = f"--method {method!r} is unknown; choose {', '.join(METHODS)}"
        raise ConfigError(msg)
    if method != "grid" and (trials is None or trials < 1):
        msg = f"--method {method} needs --trials N (N >= 1), got {trials}"
        raise ConfigError(msg)
    if method == "grid" and trials is not None:
        msg = (
            f"--trials {trials} does not apply to --method grid (a grid evaluates every set of "
            "the space); leave out --trials, or sample N sets with --method random --trials N"
        )
        raise ConfigError(msg)
    if batch_size is not None and batch_size < 1:
        msg = f"batch_size {batch_size} is out of range: allowed >= 1"
        raise ConfigError(msg)
    objectives = parse_objective(objective)
    fixed = dict(params or {})
    sp = space if isinstance(space, Space) else Space.parse(cls, space, fixed)
    tick_store = store if isinstance(store, TickStore) else TickStore(store)
    day_list = _stored_days(tick_store, venue, symbol, days)
    wf = WalkForwardSpec.parse(walk_forward) if isinstance(walk_forward, str) else walk_forward
    if wf is not None:
        windows(day_list, wf)  # too few days for one window is refused now
    limits = RiskLimits.from_dict(dict(risk)) if isinstance(risk, Mapping) else risk
    spec = EvalSpec(
        strategy=strategy_path(cls),
        venue=venue,
        symbol=symbol,
        store=str(tick_store.root),
        fixed=dict(sp.fixed),
        risk=limits,
        latency=latency or LatencyConfig(),
        queue=queue or QueueConfig(),
        mode=mode,
    )
    name = study or f"{cls.__name__}_{venue}-{symbol}_{day_list[0]}_{day_list[-1]}_{method}"
    folder = Path(out) if out is not None else Path("reports") / "optimize" / name
    # everything that can be refused is, before a cluster starts or a folder is made
    _check_study(folder, name, spec, write=False)
    sets = None
    if method != "tpe":
        sets = sp.grid() if method == "grid" else sp.sample(trials or 1, seed=seed)
    elif storage is not None:
        _optuna_storage(folder, storage)  # an RDB URL that cannot be opened is refused now
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=0, unit="unit", desc=name, disable=not show, file=sys.stderr, leave=True)
    try:
        with open_runner(spec, day_list[0], workers=workers, scheduler=scheduler) as runner:
            res = ResultsDir(folder)
            _check_study(folder, name, spec, write=True)
            st = _Study(spec, sp, day_list, res, objectives, bar, on_batch=on_batch)
            choices: dict[int, str] | None = None
            if sets is None:
                assert trials is not None
                tpe = _Tpe(name, trials, seed, storage, batch_size)
                storage_url, tpe_study = _run_tpe(st, runner, tpe, name, day_list)
                table = _tpe_table(st, tpe_study)
                if wf is not None:
                    choices = _tpe_windows(st, runner, tpe, wf)
            else:
                _run_sets(st, runner, sets, batch_size)
                storage_url = None
                table = _sets_table(st, sets)
    finally:
        bar.close()
    base = rerun if rerun is not None else _rerun_base(spec, day_list)
    result = _result(st, name, method, table, storage_url, base)
    if wf is not None:
        curves = st.res.equity_curves().filter(pl.col("day").is_in(day_list))
        result.walk = run_walk_forward(
            st.res.metrics().filter(pl.col("day").is_in(day_list)), curves, wf,
            objectives, spec.interval_ns, choices,
        )  # fmt: skip
    from research.assess import assess

    return assess(result, report=report)


# --- days and the study file ------------------------------------------------------------
def _stored_days(
    store: TickStore, venue: str, symbol: str, days: Sequence[dt.date]
) -> list[dt.date]:
    if not days:
        msg = "give the study's days (--from DATE --to DATE)"
        raise ConfigError(msg)
    missing = [d for d in days if not store.path_for(venue, symbol, d).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        msg = (
            f"no stored data of {venue}/{symbol} on {missing[0]}{more} in {store.root}; "
            "see `hftlab data ls`, or leave the day out"
        )
        raise ConfigError(msg)
    return sorted(set(days))


def _check_study(folder: Path, name: str, spec: EvalSpec, *, write: bool) -> None:
    """Check a resumed study was run with the same settings; ``write`` them for a new one."""
    path = folder / STUDY_FILE
    want = {"study": name, **spec.describe()}
    if path.is_file():
        try:
            have = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{path} cannot be read ({exc}); remove the folder or give another --out"
            raise StoreError(msg) from exc
        diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        if diff:
            k = diff[0]
            msg = (
                f"the study in {folder} was run with {k}={have.get(k)!r}, not {want.get(k)!r}; "
                "resume it with the same settings, or give another --study or --out"
            )
            raise ConfigError(msg)
        return
    if write:
        path.write_text(json.dumps(want, indent=2, default=str) + "\n", encoding="utf-8")


# --- grid and random ----------------------------------------------------------------------
def _chunks(items: list[Any], parts: int, cap: int) -> list[list[Any]]:
    """``items`` split into ``parts`` (or more: at most ``cap`` each) near-equal runs."""
    n = max(parts, math.ceil(len(items) / cap), 1)
    size = math.ceil(len(items) / n) if items else 0
    return [items[i : i + size] for i in range(0, len(items), size)] if size else []


def _plan(
    st: _Study, sets: Sequence[Mapping[str, Any]], days: Sequence[dt.date], workers: int,
    batch_size: int | None,
) -> list[Batch]:  # fmt: skip
    """Batches of the missing (set, day) units: per day, split so every worker has work."""
    done = st.res.done()
    keys = [params_key(st.space.make(s)) for s in sets]
    todo = {d: [s for s, k in zip(sets, keys, strict=True) if (k, d) not in done] for d in days}
    busy = [d for d in days if todo[d]]
    st.reused += sum(len(sets) - len(todo[d]) for d in days)
    parts = math.ceil(workers / max(len(busy), 1))
    cap = batch_size or MAX_BATCH
    return [(d, list(c)) for d in busy for c in _chunks(todo[d], parts, cap)]


def _run_sets(
    st: _Study, runner: Runner, sets: list[dict[str, Any]], batch_size: int | None
) -> None:
    units = len(sets) * len(st.days)
    st.progress.reset(total=units)
    batches = _plan(st, sets, st.days, runner.n_workers, batch_size)
    st.progress.update(st.reused)
    by_key: dict[str, int] = {}
    for key, _ in st.res.done():
        by_key[key] = by_key.get(key, 0) + 1

    def done(batch: Batch, metrics: pl.DataFrame, equity: pl.DataFrame) -> None:
        st.write(batch, metrics, equity)
        for key in metrics["key"].to_list():
            by_key[key] = by_key.get(key, 0) + 1
            if by_key[key] == len(st.days) and len(st.objectives) == 1:
                st.show_best(st.stats(key, st.days)[st.objectives[0]])

    runner.run(batches, done)


def _param_columns(space: Space, sets: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {d.name: [s[d.name] for s in sets] for d in space.dims}


def _sets_table(st: _Study, sets: list[dict[str, Any]]) -> pl.DataFrame:
    keys = [params_key(st.space.make(s)) for s in sets]
    head = pl.DataFrame(
        {"trial": list(range(len(sets))), "key": keys, **_param_columns(st.space, sets)},
        strict=False,
    )
    stats = _stats_of(st, keys)
    table = head.join(stats, on="key", how="left")
    complete = pl.col("n_days") == len(st.days)
    return table.with_columns(
        pl.when(complete).then(pl.lit("complete")).otherwise(pl.lit("failed")).alias("state")
    )


def _stats_of(st: _Study, keys: Sequence[str]) -> pl.DataFrame:
    m = st.res.metrics().filter(pl.col("key").is_in(list(keys)), pl.col("day").is_in(st.days))
    c = st.res.equity_curves().filter(
        pl.col("key").is_in(list(keys)), pl.col("day").is_in(st.days)
    )
    return aggregate(m, c, st.spec.interval_ns)


# --- Optuna TPE ---------------------------------------------------------------------------
def _optuna_storage(folder: Path, storage: str | None) -> tuple[Any, str]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is not None:
        try:
            return optuna.storages.RDBStorage(storage), storage
        except (ImportError, ValueError, optuna.exceptions.OptunaError) as exc:
            msg = f"--storage {storage!r} cannot be opened as an Optuna RDB storage: {exc}"
            raise ConfigError(msg) from exc
        except Exception as exc:  # SQLAlchemy's errors (a bad URL, a server down)
            msg = f"--storage {storage!r} cannot be opened: {type(exc).__name__}: {exc}"
            raise ConfigError(msg) from exc
    path = folder / JOURNAL_FILE
    return JournalStorage(JournalFileBackend(str(path))), str(path)


def _distributions(space: Space) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for d in space.dims:
        if d.kind == "choices":
            out[d.name] = CategoricalDistribution(list(d.values))
        elif d.type is int:
            out[d.name] = IntDistribution(int(d.lo), int(d.top), step=int(d.step or 1))
        else:
            out[d.name] = FloatDistribution(float(d.lo), float(d.top), step=d.step)
    return out


def _open_study(st: _Study, name: str, storage: Any, seed: int) -> Any:
    import optuna
    from optuna.trial import TrialState

    directions: list[Literal["maximize", "minimize"]] = [
        "maximize" if OBJECTIVES[o] > 0 else "minimize" for o in st.objectives
    ]
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        directions=directions,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4) if len(directions) == 1 else None,
    )
    if [d.name.lower() for d in study.directions] != directions:
        msg = (
            f"Optuna study {name!r} exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {directions} "
            f"(objective {','.join(st.objectives)}); give another --study"
        )
        raise ConfigError(msg)
    # trials a killed run left running will never finish: they are failed, not counted
    study_id = storage.get_study_id_from_name(name)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_state_values(tid, TrialState.FAIL)
    return study


@dataclasses.dataclass(frozen=True)
class _Tpe:
    """The settings of a study's TPE search (reused by its walk-forward windows)."""

    name: str
    trials: int
    seed: int
    storage: str | None
    batch_size: int | None


def _run_tpe(
    st: _Study, runner: Runner, tpe: _Tpe, name: str, days: list[dt.date]
) -> tuple[str, Any]:
    """Run Optuna study ``name`` to ``tpe.trials`` finished trials, each evaluated on
    ``days`` (the study's, or a walk-forward window's train days); returns its storage's
    URL and the study."""
    from optuna.trial import TrialState

    store, url = _optuna_storage(st.res.root, tpe.storage)
    main = days == st.days
    with st.in_optuna():
        study = _open_study(st, name, store, tpe.seed)
        ended = (TrialState.COMPLETE, TrialState.PRUNED)
        finished = len(study.get_trials(deepcopy=False, states=ended))
    dists = _distributions(st.space)
    left = max(0, tpe.trials - finished)
    st.progress.total = (st.progress.total or 0) + left * len(days)
    st.progress.refresh()
    multi = len(st.objectives) > 1
    while left > 0:
        with st.in_optuna():
            wave = [study.ask(dists) for _ in range(min(left, max(2, runner.n_workers)))]
        left -= len(wave)
        sets = {t.number: _rounded(st.space, t.params) for t in wave}
        keys = {n: params_key(st.space.make(s)) for n, s in sets.items()}
        active = list(wave)
        for i, day in enumerate(days):
            uniq = {keys[t.number]: sets[t.number] for t in active}
            before = st.reused
            _plan_run(st, runner, list(uniq.values()), day, tpe.batch_size)
            st.progress.update(st.reused - before)
            if multi:
                continue
            still = []
            for t in active:
                value = st.stats(keys[t.number], days[: i + 1])[st.objectives[0]]
                if math.isfinite(value):
                    with st.in_optuna():
                        t.report(value, step=i)
                        prune = i + 1 < len(days) and t.should_prune()
                    if prune:
                        with st.in_optuna():
                            study.tell(t, state=TrialState.PRUNED)
                        st.progress.update(len(days) - i - 1)
                        continue
                still.append(t)
            active = still
        for t in active:
            stats = st.stats(keys[t.number], days)
            values = [stats[o] for o in st.objectives]
            with st.in_optuna():
                if all(math.isfinite(v) for v in values):
                    study.tell(t, values if multi else values[0])
                else:
                    study.tell(t, state=TrialState.FAIL)
            if main and not multi and math.isfinite(values[0]):
                st.show_best(values[0])
    return url, study


def _tpe_windows(st: _Study, runner: Runner, tpe: _Tpe, spec: WalkForwardSpec) -> dict[int, str]:
    """Walk-forward for TPE: per window a TPE study of ``tpe.trials`` trials on its train
    days only (Optuna study ``NAME.wfI``); its best complete trial, ranked as the study
    ranks, is evaluated on the window's test days. Returns window -> chosen key."""
    choices: dict[int, str] = {}
    for w in windows(st.days, spec):
        name = f"{tpe.name}.wf{w.index}"
        own = dataclasses.replace(tpe, seed=tpe.seed + 1 + w.index)
        _, study = _run_tpe(st, runner, own, name, list(w.train))
        with st.in_optuna():
            done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        rounded = [_rounded(st.space, t.params) for t in done]
        sets = {params_key(st.space.make(v)): v for v in rounded}
        best = choose(
            st.res.metrics(), st.res.equity_curves(), w.train, st.objectives,
            st.spec.interval_ns, list(sets),
        )  # fmt: skip
        if best is None:
            msg = f"walk-forward window {w.index}: no TPE trial completed on its train days"
            raise ConfigError(msg)
        choices[w.index] = best["key"]
        st.progress.total += len(w.test)
        for day in w.test:
            before = st.reused
            _plan_run(st, runner, [sets[best["key"]]], day, tpe.batch_size)
            st.progress.update(st.reused - before)
    return choices


def _rounded(space: Space, values: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's floats on a stepped range rounded as the grid's are (one key per point)."""
    from research.space import GRID_DECIMALS

    out = dict(values)
    for d in space.dims:
        if d.kind == "range" and d.type is float and d.step is not None:
            out[d.name] = round(float(out[d.name]), GRID_DECIMALS)
    return out


def _plan_run(
    st: _Study, runner: Runner, sets: list[dict[str, Any]], day: dt.date, batch_size: int | None
) -> None:
    batches = _plan(st, sets, [day], runner.n_workers, batch_size)
    runner.run(batches, st.write)


def _tpe_table(st: _Study, study: Any) -> pl.DataFrame:
    with st.in_optuna():
        done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    sets = [_rounded(st.space, t.params) for t in done]
    keys = [params_key(st.space.make(s)) for s in sets]
    head = pl.DataFrame(
        {
            "trial": [t.number for t in done],
            "key": keys,
            "state": [t.state.name.lower() for t in done],
            **_param_columns(st.space, sets),
        },
        schema_overrides={"trial": pl.Int64(), "key": pl.String(), "state": pl.String()},
        strict=False,
    )
    return head.join(_stats_of(st, keys).unique("key"), on="key", how="left")


# --- the result -------------------------------------------------------------------------
def _result(
    st: _Study, name: str, method: str, table: pl.DataFrame, storage: str | None, rerun: str
) -> OptimizeResult:
    table = ranked(with_score(table, st.objectives), st.objectives)
    try:
        table.write_parquet(st.res.root / "trials.parquet")
    except OSError as exc:
        msg = f"cannot write {st.res.root / 'trials.parquet'}: {exc}"
        raise StoreError(msg) from exc
    complete = table.filter(pl.col("state") == "complete")
    pareto = pareto_front(complete, st.objectives) if len(st.objectives) > 1 else complete.clear()
    best = pareto if len(st.objectives) > 1 else complete.head(10)
    sets = table.select("key", *st.space.names).unique("key")
    results = st.res.metrics().filter(pl.col("day").is_in(st.days))
    results = results.join(sets, on="key", how="left")
    return OptimizeResult(
        study=name,
        out=st.res.root,
        strategy=st.spec.strategy,
        method=method,
        objectives=st.objectives,
        params=tuple(st.space.names),
        trials=table,
        best=best,
        pareto=pareto,
        results=results,
        evaluated=st.evaluated,
        reused=st.reused,
        interval_ns=st.spec.interval_ns,
        storage=storage,
        optuna_seconds=st.optuna_s,
        rerun=rerun,
    )


def _rerun_base(spec: EvalSpec, days: Sequence[dt.date]) -> str:
    """``hftlab backtest`` words of the study's strategy, data and venue model."""
    from framework.strategy.loader import BUNDLED

    names = {v: k for k, v in BUNDLED.items()}
    lat, q = spec.latency, spec.queue
    words = [
        "hftlab backtest", names.get(spec.strategy, spec.strategy), "--venue", spec.venue,
        "--symbol", spec.symbol, "--from", str(days[0]), "--to", str(days[-1]),
        "--store", spec.store,
    ]  # fmt: skip
    words += [f"--param {k}={_word(v)}" for k, v in sorted(spec.fixed.items())]
    if lat.model == "constant":
        words.append(f"--latency constant:{lat.entry_ns}ns,{lat.response_ns}ns")
    elif lat.model == "feed":
        words.append(f"--latency feed:{lat.entry_mult:g},{lat.response_mult:g}")
    words.append(f"--queue power:{q.n:g}" if q.model == "power" else f"--queue {q.model}")
    if spec.risk is not None:
        limits = dataclasses.asdict(spec.risk).items()
        words += [f"--risk {k}={_word(v)}" for k, v in limits if v is not None]
    return " ".join(words)


class _CallableModule(types.ModuleType):
    """``research.optimize`` is this module once it is imported (Python binds a package's
    submodule to its name), so calling it calls :func:`optimize`: ``research.optimize(...)``
    works whether or not ``research.optimize`` was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> OptimizeResult:
        return optimize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["METHODS", "OptimizeResult", "optimize"]
