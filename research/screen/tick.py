"""A screened signal as a tick-level strategy, backtested through the normal path.

``--to-strategy`` maps a parameter set of the screen to a strategy the engine runs event by
event, with latency, a queue model, fees and the touch as it is when the order arrives:

``imbalance`` -> ``imbalance_taker`` (strategies.imbalance_taker.ImbalanceTaker)
    it buys when ``move_per_imbalance x imbalance`` beats the round-trip cost it counts (the
    spread, fees and a margin): with ``taker_fee_bps=0`` and ``margin_ticks=0`` the cost is
    the spread, so ``move_per_imbalance = median spread of the bars / threshold`` makes it
    trade where the screen does (imbalance beyond ``threshold`` at the usual spread);
    ``confirm_ms=0``; ``hold_ms = hold x bar``; the stop is put out of reach
    (``stop_ticks`` 10^6) as the screen has none.
``trade_flow`` -> ``trade_flow`` (strategies.trade_flow.TradeFlow)
    ``threshold``, ``mode`` as they are; the rolling ``window`` of bars becomes the decay of
    its flow, ``halflife_ms = window x bar x ln 2 / 2`` (the same mean age of the trades
    counted); ``min_trades`` as they are; ``hold_ms = hold x bar``.
any signal -> ``bars`` (:class:`BarSignal`, generated here)
    rebuilds the bars as the run goes (a timer at each bar's end; mid, touch features and
    trade volumes from what the strategy saw: the same bars as research.screen.bars, a test
    checks), calls the signal function on the day's bars
    so far and acts on its last row: an entry is an immediate-or-cancel order at the far
    touch, an exit a market order; a position still open when the next day's data starts
    is closed then (the screen closes it at the day's last bar). Python callbacks, and the
    signal evaluated over the day's bars at every bar: a research tool, not a fast one.

Each entry is ``size`` lots (the screen's), position at most ``size``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any, Final, cast

import polars as pl

from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import Params, Strategy, nb, param
from framework.strategy.context import Context
from research.screen.bars import BAR_SCHEMA
from research.screen.signals import Signal, load_signal

#: ``--to-strategy`` name of the generated strategy
GENERATED: Final = "bars"
NO_PRICE: Final = nb.NO_PRICE
#: a stop no screen position reaches
NO_STOP_TICKS: Final = 1_000_000


def strategy_names(signal: Signal) -> list[str]:
    """What ``--to-strategy`` accepts for ``signal``."""
    return ([signal.strategy] if signal.strategy else []) + [GENERATED]


def strategy_for(signal: Signal, name: str) -> str:
    """The ``--to-strategy`` name checked: the bundled strategy the signal maps to (its own
    name stands for it too) or the generated one; anything else one clear line."""
    allowed = strategy_names(signal)
    if name == signal.name and signal.strategy:
        return signal.strategy
    if name not in allowed:
        msg = (
            f"--to-strategy {name!r}: signal {signal.name} maps to "
            f"{' or '.join(repr(a) for a in allowed)} ({GENERATED!r}: the generated bar "
            "strategy; see `hftlab screen --help`)"
        )
        raise ConfigError(msg)
    return name


def to_strategy(
    signal: Signal,
    values: dict[str, Any],
    name: str,
    *,
    every_ns: int,
    bars: pl.DataFrame,
    size: int = 1,
) -> tuple[str, dict[str, Any]]:
    """The strategy (bundled name or ``module:Class``) and its parameters for one set."""
    name = strategy_for(signal, name)
    full = signal.Params.create(values).as_dict()
    bar_ms = every_ns / 1e6
    sized = {"order_qty": size, "max_position": size}
    if name == "imbalance_taker":
        spread = bars["spread"].fill_nan(None).drop_nulls()
        typical = float(spread.median()) if len(spread) else 1.0  # type: ignore[arg-type]
        return name, {
            "move_per_imbalance": max(typical, 1.0) / full["threshold"],
            "margin_ticks": 0.0,
            "confirm_ms": 0.0,
            "taker_fee_bps": 0.0,
            "hold_ms": full["hold"] * bar_ms,
            "stop_ticks": NO_STOP_TICKS,
            **sized,
        }
    if name == "trade_flow":
        return name, {
            "mode": full["mode"],
            "threshold": full["threshold"],
            "halflife_ms": full["window"] * bar_ms * math.log(2) / 2,
            "min_trades": float(full["min_trades"]),
            "hold_ms": full["hold"] * bar_ms,
            **sized,
        }
    return f"{__name__}:BarSignal", {
        "signal": signal.name,
        "values": json.dumps(full, sort_keys=True),
        "every_ms": bar_ms,
        "order_qty": size,
    }


# --- the generated strategy ----------------------------------------------------------------
class BarSignalParams(Params):
    """The signal (built-in name or module:function), its parameters as JSON, the bar."""

    signal: str = param(
        "breakout", pattern=r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?", example="breakout, pkg.mod:fn"
    )
    values: str = param("{}", pattern=r"\{.*\}", example='{"hold": 10}', note="JSON")
    every_ms: float = param(1_000.0, gt=0, note="ms")
    order_qty: int = param(1, ge=1, note="lots")
    #: no event for this long: the day is over (no bars until the next event)
    quiet_s: float = param(60.0, gt=0, note="s")


class BarSignal(Strategy):
    """Trade a screened signal tick by tick: bars rebuilt from what the strategy sees, the
    signal function over the day's bars at each bar's end, its last row acted on."""

    Params = BarSignalParams
    features = True
    risk = RiskLimits(max_position=5, max_open_orders=2, max_orders_per_s=50)

    def on_start(self, ctx: Context) -> None:
        p = cast(BarSignalParams, self.params)
        self.sig = load_signal(p.signal)
        try:
            self.values = dict(json.loads(p.values))
        except (ValueError, TypeError) as exc:
            msg = f"BarSignal values {p.values!r} are not a JSON object: {exc}"
            raise ConfigError(msg) from exc
        self.every = round(p.every_ms * 1e6)
        self.quiet = round(p.quiet_s * 1e9)
        self.inst = -1
        self.oid = 0
        self.rows: dict[str, list[Any]] = {k: [] for k in BAR_SCHEMA}
        self.day: dt.date | None = None
        self.last_event = 0
        self.running = False
        self._new_bar(math.nan)

    def _new_bar(self, last_close: float) -> None:
        """A bar opening at the last close (as research.screen.bars opens one)."""
        self.o = self.h = self.lo = self.c = last_close
        self.seen_mid = not math.isnan(last_close)
        self.buy = self.sell = self.nt = self.vol = 0
        self.notional = 0.0

    def _event(self, ctx: Context, inst: int) -> bool:
        if self.inst < 0:
            self.inst = inst
        if inst != self.inst:
            return False
        now = ctx.now
        day = dt.datetime.fromtimestamp(now / 1e9, tz=dt.UTC).date()
        if day != self.day:  # a new day: the screen's bars start afresh each day
            if self.day is not None and ctx.position(inst) and not self._busy(ctx):
                pos = ctx.position(inst)  # the screen is flat at each day's end
                self.oid = max(ctx.submit_market(inst, SELL if pos > 0 else BUY, abs(pos)), 0)
            self.day = day
            self.rows = {k: [] for k in BAR_SCHEMA}
        if not self.running:
            self.running = True
            end = -(-now // self.every) * self.every
            self.bar_end = end
            ctx.set_timer(self.every, end - now)
        self.last_event = now
        return True

    def on_book(self, ctx: Context, inst: int) -> None:
        if not self._event(ctx, inst):
            return
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if bb == NO_PRICE or ba == NO_PRICE:
            return
        mid = 0.5 * (bb + ba)
        if not self.seen_mid:
            self.o = self.h = self.lo = mid
            self.seen_mid = True
        self.h, self.lo, self.c = max(self.h, mid), min(self.lo, mid), mid

    def on_trade(self, ctx: Context, inst: int) -> None:
        if not self._event(ctx, inst):
            return
        px, qty, side = ctx.last_trade(inst)
        if qty <= 0:
            return
        self.buy += qty if side == BUY else 0
        self.sell += qty if side == SELL else 0
        self.nt += 1
        self.vol += qty
        self.notional += float(px) * qty

    def on_timer(self, ctx: Context) -> None:
        now = ctx.now
        if now - self.last_event > self.quiet:  # the day's data has ended: sleep
            ctx.set_timer(0)
            self.running = False
            self._new_bar(self.c)
            return
        inst = self.inst
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        both = bb != NO_PRICE and ba != NO_PRICE
        row = {
            "ts": self.bar_end,
            "open": self.o,
            "high": self.h,
            "low": self.lo,
            "close": self.c,
            "microprice": ctx.feature(inst, "microprice"),
            "imbalance": ctx.feature(inst, "imbalance"),
            "spread": float(ba - bb) if both else math.nan,
            "buy_volume": self.buy,
            "sell_volume": self.sell,
            "n_trades": self.nt,
            "vwap": self.notional / self.vol if self.vol else math.nan,
        }
        for k, v in row.items():
            self.rows[k].append(v)
        self.bar_end += self.every
        self._new_bar(self.c)
        bars = pl.DataFrame(self.rows, schema=BAR_SCHEMA)
        le, lx, se, sx = (bool(a[-1]) for a in self.sig(bars, self.values))
        self._act(ctx, le, lx, se, sx, both)

    def _busy(self, ctx: Context) -> bool:
        """Is our one working order still live? (then we wait for it)"""
        if self.oid and ctx.is_live(self.oid):
            return True
        self.oid = 0
        return False

    def _act(self, ctx: Context, le: bool, lx: bool, se: bool, sx: bool, both: bool) -> None:
        if self._busy(ctx):
            return
        inst = self.inst
        pos = ctx.position(inst)
        q = cast(BarSignalParams, self.params).order_qty
        if (pos > 0 and lx) or (pos < 0 and sx):
            self.oid = max(ctx.submit_market(inst, SELL if pos > 0 else BUY, abs(pos)), 0)
        elif pos == 0 and both and (le or se):
            side = BUY if le else SELL
            price = ctx.best_ask(inst) if le else ctx.best_bid(inst)
            self.oid = max(ctx.submit(inst, side, price, q, tif="ioc"), 0)


# --- the tick backtest and its figures ------------------------------------------------------
def run_tick(
    *,
    store: Any,
    venue: str,
    symbol: str,
    days: Sequence[dt.date],
    strategy: str,
    params: dict[str, Any],
    latency: str,
    queue: str,
    out_dir: Any,
    mode: str = "auto",
) -> tuple[Any, dict[str, Any]]:
    """Backtest the strategy over ``days`` (the normal path: run_from_store, its tables and
    report in ``out_dir``); returns the result and the figures the comparison shows."""
    from framework.analysis.stats import summarize
    from framework.engine.config import LatencyConfig, QueueConfig
    from framework.engine.runner import run_from_store
    from framework.strategy.spec import strategies_from_words

    words = [f"{k}={v}" for k, v in params.items()]
    (strat,) = strategies_from_words([strategy], params=words)
    result, _ = run_from_store(
        store=store,
        keys=[(venue, symbol)],
        dates=list(days),
        strategies=[strat],
        latency=LatencyConfig.parse(latency),
        queue=QueueConfig.parse(queue),
        mode=mode,  # type: ignore[arg-type]
        out_dir=out_dir,
        report=True,
    )
    s = summarize(result, strategy=strat.name)
    return result, {
        "strategy": strategy,
        "params": params,
        "n_trades": int(s["n_round_trips"]),
        "n_fills": int(s["n_fills"]),
        "n_orders": int(s["n_orders"]),
        # what the touch and the queue did to the orders: IOCs expired, rejections, denials
        "unfilled_orders": int(s["n_orders"]) - int(s["orders_by_status"].get("filled", 0)),
        "orders_by_status": s["orders_by_status"],
        "gross": float(s["gross_pnl"]),
        "fees": float(s["fees"]),
        "pnl": float(s["pnl"]),
        "sharpe": float(s["sharpe"]),
        "max_drawdown": float(s["max_drawdown"]),
        "win_rate": float(s["hit_ratio"]),
        "maker_share": float(s["maker_share_qty"]),
        "n_denials": int(s["n_denials"]),
        "latency": str(result.config.get("latency")),
        "queue": str(result.config.get("queue")),
        **_latency_of(result),
    }


def _latency_of(result: Any) -> dict[str, float]:
    """Median measured entry and round-trip latency (ms) of the run's orders (the latency
    table is a histogram: ``ns`` and its ``count`` per kind)."""
    from framework.analysis.report import weighted_quantiles

    lat = result.scan("latency").collect()
    out: dict[str, float] = {}
    for kind in ("entry", "round_trip"):
        sub = lat.filter(pl.col("kind") == kind).sort("ns")
        if sub.height:
            q = weighted_quantiles(sub["ns"].to_numpy(), sub["count"].to_numpy(), [0.5])
            out[f"{kind}_ms"] = float(q[0]) / 1e6
    return out


__all__ = [
    "GENERATED",
    "BarSignal",
    "BarSignalParams",
    "run_tick",
    "strategy_for",
    "strategy_names",
    "to_strategy",
]
