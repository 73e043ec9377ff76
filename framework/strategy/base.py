"""The Strategy base class: one class for backtest, paper and live.

A strategy reads like the idea behind it: typed parameters, risk limits, and callbacks that
talk only to a Context. It can run two ways in the backtester:

* **flexible path** — plain-Python methods ``on_book(self, ctx, inst)`` etc.; the compiled
  loop runs to the next event the strategy subscribed to and calls it;
* **fast path** — the class names compiled callbacks in :attr:`Strategy.compiled`
  (numba functions taking ``(ctx, sid, ..., params, state)``); they run inside the compiled
  loop and never return to Python.

A class may provide both (the same logic twice); ``Backtest(mode=...)`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from framework.core.errors import ConfigError
from framework.risk.limits import RiskLimits
from framework.strategy.params import Params as ParamsBase

if TYPE_CHECKING:
    from framework.strategy.context import Context, FillInfo, OrderUpdate


@dataclass(frozen=True)
class CompiledCallbacks:
    """Compiled (numba) callbacks of a strategy's fast path; any may be None.

    Signatures (``ctx`` is the engine state, ``p`` the params namedtuple, ``s`` the int64
    state array of ``state_size`` words)::

        on_start(ctx, sid, p, s)
        on_book(ctx, sid, inst, p, s)
        on_trade(ctx, sid, inst, p, s)
        on_fill(ctx, sid, oid, side, price, qty, p, s)
        on_order(ctx, sid, oid, kind, reason, p, s)   # kind: nb.RESP_ACK, RESP_CANCELED, ...
        on_timer(ctx, sid, p, s)
        on_stop(ctx, sid, p, s)
    """

    on_start: Any = None
    on_book: Any = None
    on_trade: Any = None
    on_fill: Any = None
    on_order: Any = None
    on_timer: Any = None
    on_stop: Any = None
    state_size: int = 8

    def names(self) -> list[str]:
        return [
            n
            for n in (
                "on_start",
                "on_book",
                "on_trade",
                "on_fill",
                "on_order",
                "on_timer",
                "on_stop",
            )
            if getattr(self, n) is not None
        ]


class Strategy:
    """Base class. Subclasses set ``Params`` (a :class:`Params` subclass), optionally
    ``risk`` (:class:`RiskLimits`) and ``compiled``, and override the callbacks they need."""

    Params: ClassVar[type[ParamsBase]] = ParamsBase
    risk: ClassVar[RiskLimits] = RiskLimits()
    compiled: ClassVar[CompiledCallbacks | None] = None
    #: compute microprice, imbalance, volatility and trade-flow imbalance for the run
    #: (``ctx.feature`` / ``nb.feature``); off by default, as it costs a pass per batch
    features: ClassVar[bool] = False
    #: which Python callbacks exist is found by introspection; these names are the API
    CALLBACKS: ClassVar[tuple[str, ...]] = (
        "on_start",
        "on_book",
        "on_trade",
        "on_fill",
        "on_order",
        "on_timer",
        "on_stop",
    )

    def __init__(
        self,
        params: ParamsBase | dict[str, Any] | None = None,
        *,
        risk: RiskLimits | dict[str, Any] | None = None,
        instruments: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(params, ParamsBase):
            if not isinstance(params, self.Params):
                msg = (
                    f"{type(self).__name__} takes {self.Params.__name__}, "
                    f"got {type(params).__name__}"
                )
                raise ConfigError(msg)
            self.params = params
        else:
            self.params = self.Params.create(params)
        if risk is None:
            self.risk_limits = type(self).risk
        elif isinstance(risk, RiskLimits):
            self.risk_limits = risk
        else:
            self.risk_limits = RiskLimits.from_dict(risk)
        #: instrument keys ("VENUE/SYMBOL") this strategy listens to; None = all in the run
        self.instruments = instruments
        self.name = name or type(self).__name__
        #: after a run on the fast path: a copy of the compiled callbacks' final state array
        self.compiled_state: Any = None

    # --- which path ------------------------------------------------------------------
    @classmethod
    def has_python_path(cls) -> bool:
        return any(getattr(cls, n) is not getattr(Strategy, n) for n in cls.CALLBACKS)

    @classmethod
    def has_compiled_path(cls) -> bool:
        return cls.compiled is not None

    def compiled_params(self, instrument_keys: list[str]) -> dict[str, Any]:
        """Values that replace parameters in the ``p`` the compiled callbacks get, for what
        numba code cannot work out itself — e.g. an instrument key ("VENUE/SYMBOL") turned
        into its index among the run's ``instrument_keys``. None by default."""
        return {}

    def subscribes(self, callback: str) -> bool:
        """Whether the Python path implements ``callback``."""
        return getattr(type(self), callback) is not getattr(Strategy, callback)

    # --- callbacks (flexible path) ------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        """Called once before the first event."""

    def on_book(self, ctx: Context, inst: int) -> None:
        """The touch (best bid/ask price or size) of ``inst`` changed."""

    def on_trade(self, ctx: Context, inst: int) -> None:
        """A trade printed on ``inst``: ``ctx.last_trade(inst)`` has it."""

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        """One of our orders was (partly) filled."""

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        """An order was acknowledged, cancelled, rejected, expired or modified."""

    def on_timer(self, ctx: Context) -> None:
        """The timer set with ``ctx.set_timer`` fired."""

    def on_stop(self, ctx: Context) -> None:
        """Called once after the last event."""
