"""The venue's matcher for one symbol: the day's replayed orders plus client orders.

Interface (what the venue process and the order sessions call)::

    m = Matcher(instrument=0)
    rows = m.on_market(events)      # the replay's EVENT_DTYPE rows in, in order; returns the
                                    # client-activity rows to publish in the feed
    reps = m.submit(owner, token, side, qty, price, ord_type=LIMIT, tif=DAY)
    reps = m.cancel(owner, order_id, leave_qty=0)
    reps = m.replace(owner, order_id, new_token, price, qty)
    m.take_reports()                # reports caused by market data (fills of resting orders)
    m.take_events()                 # client-activity rows not yet taken (after order calls)

Every order call returns the :class:`Report` s it caused, for every owner (a taker's fill
also fills a resting client order of another session): the caller routes them by
``Report.owner``.

Rules
-----
* **The replayed book is the day's record.** Replayed orders live in the framework's L3 book
  and every replayed event is applied to it as recorded: client activity never alters it
  (the backtest venue's no-market-impact assumption). The feed therefore shows the day's
  book plus the client orders, and stays consistent message by message.
* **Price-time priority.** A client order joins its level's queue behind every replayed and
  client order resting there. A crossing client order takes liquidity best price first,
  then in queue order (replayed and client orders interleaved by arrival), at the resting
  order's price.
* **Taking replayed liquidity.** Lots a client takes from a replayed order are marked
  *consumed*: they cannot be taken twice, they do not change the published book, and the
  print is published as a ``KIND_TRADE`` row (an ITCH non-displayed trade, no order
  reference). The replay's own later reductions of that order (executions, cancels, size
  decreases) are counted against the consumed lots first: what a client took is gone until
  the day removes that much of the order.
* **Replayed flow reaching client orders** (the backtest's FIFO queue model, exact here since
  the day is order by order):

  - a replayed *execution* of order R on side S at price P was an aggressor reaching P: it
    would have hit first every client order on S priced better than P, and those at P that
    joined the queue before R (R is behind them). They fill, price then time order, up to
    the executed lots, at their own price. Executions of orders ahead of a client order
    only move it up.
  - a replayed *add* (or a modify that moves an order) on side S priced at or through resting
    client orders of the other side is marketable against them: they fill up to its size,
    best price first, and those lots of the new replayed order count as consumed.
  - a replayed *trade print* (``KIND_TRADE``, hidden liquidity; ``side`` the aggressor's,
    ``NO_SIDE`` = either) at price P fills client orders of the passive side priced
    through P, and those at P with no unconsumed replayed lots ahead, up to its size. (The
    backtest fills the whole order on a print through it; here the print's size is known,
    so it bounds the fill.)
* **Order types.** Limit (rests what it does not take), market (takes at any price, the
  rest is cancelled; rejected when the other side is empty), IOC (the rest is cancelled),
  post-only (rejected if it would take). New orders and replaces are rejected while the
  symbol is halted, paused or quoting only; cancels are always accepted.
* **Cancel and replace** follow ``framework.kernel.venue``: ``replace`` takes the new total
  size (filled lots included); a price change or a size increase loses priority (the order
  goes to the back of its new level, and takes liquidity if the new price crosses), a size
  decrease keeps it; a new size at or below the filled lots cancels. ``cancel`` with
  ``leave_qty > 0`` is a size decrease. A client order that loses priority gets a new
  feed reference (``delete`` + ``add`` rows flagged ``FLAG_REPLACE``, as ITCH's Order
  Replace); its venue order id never changes.

Client orders appear in the feed under their own order references from
``client_ref_base`` up (disjoint from the day's ids): ``add`` when they rest, ``execute``
when a resting one fills, ``cancel`` for a size decrease, ``delete`` when cancelled. Every
action's last row carries ``FLAG_LAST``. There is no self-trade prevention: two client
orders of one owner can trade with each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from framework.book import NO_PRICE, L3Book, l2_best_ask, l2_best_bid, l2_next_level
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_REPLACE,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_QUOTING,
    EventArray,
    empty_events,
)
from framework.core.events import EVENT_DTYPE as _EVENT_DTYPE

#: first feed order reference of client orders (the day's ids stay far below it)
CLIENT_REF_BASE: Final = 1 << 62


class OrdType(enum.IntEnum):
    LIMIT = 1
    MARKET = 2


class Tif(enum.IntEnum):
    DAY = 0  #: rests until cancelled
    IOC = 1  #: what does not fill at once is cancelled
    POST_ONLY = 2  #: rejected if it would take liquidity


class ReportKind(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXECUTED = "executed"
    CANCELED = "canceled"
    REPLACED = "replaced"
    CANCEL_REJECTED = "cancel_rejected"  #: a cancel or replace that could not be done


class Reason(enum.StrEnum):
    """Why an order, cancel or replace was refused, or why an order was cancelled."""

    NONE = ""
    BAD_SIDE = "bad_side"
    BAD_QTY = "bad_qty"
    BAD_PRICE = "bad_price"
    BAD_TYPE = "bad_type"  #: unknown order type, or a market order that is post-only
    HALTED = "halted"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    NO_LIQUIDITY = "no_liquidity"
    UNKNOWN_ORDER = "unknown_order"
    IOC = "ioc"  #: the unfilled rest of an IOC or market order
    USER = "user"  #: cancelled on request


LIQ_ADDED: Final = "A"  #: the order was resting (maker)
LIQ_REMOVED: Final = "R"  #: the order took liquidity (taker)


@dataclass(frozen=True, slots=True)
class Report:
    """One thing that happened to a client order, for its owner's session."""

    kind: ReportKind
    owner: str
    token: str  #: the owner's reference of the order (the replacement's after a replace)
    order_id: int  #: venue order id (0 for a rejected order)
    side: int
    price: int  #: order price; the execution price for ``EXECUTED``
    qty: int  #: accepted / executed / cancelled lots (the new total size for ``REPLACED``)
    leaves: int  #: lots still open after this report
    ts: int  #: venue time (exchange ns)
    reason: Reason = Reason.NONE
    liquidity: str = ""  #: ``LIQ_ADDED`` or ``LIQ_REMOVED`` on executions
    match_number: int = 0
    orig_token: str = ""  #: on ``REPLACED``: the token the order had before


@dataclass(slots=True, eq=False)
class _Client:
    order_id: int
    owner: str
    token: str
    side: int
    price: int
    qty: int  #: total size (filled lots included)
    leaves: int
    tif: Tif
    ref: int = 0  #: feed order reference while resting
    ahead: set[int] = field(default_factory=set)  #: replayed orders ahead of it at its level


_HALTS: Final = (STATUS_HALTED, STATUS_PAUSED, STATUS_QUOTING)


class Matcher:
    """Price-time matching of the replayed day and client orders for one symbol (see the
    module docstring for the rules). Not thread-safe: one event loop drives it."""

    def __init__(self, *, instrument: int = 0, capacity: int = 1 << 16, n_ticks: int = 4096,
                 client_ref_base: int = CLIENT_REF_BASE) -> None:
        self.instrument = instrument
        self.book = L3Book(capacity=capacity, n_ticks=n_ticks)
        self.now = 0  #: exchange time of the last replayed event
        self.halted = False
        self._orders: dict[int, _Client] = {}  #: resting client orders by venue id
        self._levels: dict[tuple[int, int], list[_Client]] = {}  #: (side, price) -> FIFO
        self._consumed: dict[int, int] = {}  #: replayed order id -> lots clients took
        self._watch_grew = False  #: a replayed order became watched during on_market
        self._next_id = 1
        self._next_ref = client_ref_base
        self._match = 0
        self._rows: list[tuple[int, ...]] = []
        self._reports: list[Report] = []

    # --- outboxes -------------------------------------------------------------------------
    def take_events(self) -> EventArray:
        """Client-activity rows produced since the last take, in order."""
        rows, self._rows = self._rows, []
        if not rows:
            return empty_events(0)
        return np.array(rows, dtype=_EVENT_DTYPE)

    def take_reports(self) -> list[Report]:
        """Reports caused by market data since the last take."""
        reps, self._reports = self._reports, []
        return reps

    # --- queries --------------------------------------------------------------------------
    def open_order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """``(side, price, qty, leaves)`` of a resting client order, or None."""
        c = self._orders.get(order_id)
        return None if c is None else (c.side, c.price, c.qty, c.leaves)

    def live_token(self, owner: str, order_id: int) -> str | None:
        """The token ``owner``'s resting order ``order_id`` goes by now, or None when it
        rests no more (filled, cancelled, the rest of an IOC). A cancel or replace naming
        the order by any other token -- one a replace retired -- does not name a live order:
        the sessions refuse it rather than act on the order under its new token."""
        c = self._orders.get(order_id)
        return None if c is None or c.owner != owner else c.token

    def open_orders(self, owner: str) -> list[int]:
        """Venue ids of ``owner``'s resting orders, oldest first."""
        return [i for i, c in self._orders.items() if c.owner == owner]

    def queue_ahead(self, order_id: int) -> int | None:
        """Unconsumed replayed lots plus client lots ahead of a resting client order."""
        c = self._orders.get(order_id)
        if c is None:
            return None
        total = sum(self._available(r) for r in c.ahead)
        for o in self._levels[(c.side, c.price)]:
            if o is c:
                break
            total += o.leaves
        return total

    def available(self, side: int, price: int) -> int:
        """Lots a taker could get at one level of ``side``: unconsumed replayed + client."""
        q = sum(self._available(r) for r in self.book.queue(side, price))
        return q + sum(c.leaves for c in self._levels.get((side, price), ()))

    # --- market data ----------------------------------------------------------------------
    def on_market(self, events: EventArray) -> EventArray:
        """Apply replayed events in order; returns the client-activity rows not yet taken
        (the fills these events caused, after any rows of earlier order calls)."""
        n = len(events)
        if n == 0:
            return self.take_events()
        if np.any((events["kind"] == KIND_LEVEL) | (events["kind"] == KIND_BBO)):
            msg = ("the matcher takes order-by-order events; an L2 day reaches it as the "
                   "replay's synthetic per-level orders, not as level or BBO rows")
            raise ConfigError(msg)
        adds = int(np.count_nonzero(events["kind"] == KIND_ADD))
        if self.book.n_orders + adds > len(self.book.orders):
            self.book.grow(max(2 * len(self.book.orders), self.book.n_orders + adds))
        # the events to look at one by one are chosen from what is watched now; one of them
        # can make a replayed order watched (a client took part of it), and that order's
        # later events in the batch then matter too: the rest is chosen again
        start = 0
        while start < n:
            self._watch_grew = False
            idx = np.flatnonzero(self._relevant(events[start:])) + start
            for i in idx.tolist():
                if i > start:
                    self.book.apply_events(events[start:i])
                self._one(events[i])
                start = i + 1
                if self._watch_grew:
                    break
            else:
                if start < n:
                    self.book.apply_events(events[start:])
                start = n
        self.now = max(self.now, int(events["exch_ts"][-1]))
        return self.take_events()

    def _relevant(self, ev: EventArray) -> np.ndarray:
        """Events that must be looked at one by one; the rest only change the replayed book
        and go to the compiled book in runs."""
        kind = ev["kind"]
        mask = kind == KIND_STATUS
        if not self._orders and not self._consumed:
            return mask
        mask |= (kind == KIND_TRADE) | (kind == KIND_CLEAR)
        watched = set(self._consumed)
        for c in self._orders.values():
            watched |= c.ahead
        if watched:
            mask |= np.isin(ev["order_id"], np.fromiter(watched, np.uint64, len(watched)))
        bid, ask = self._client_best(BUY), self._client_best(SELL)
        price = ev["price"]
        moving = (kind == KIND_ADD) | (kind == KIND_MODIFY) | (kind == KIND_EXECUTE)
        if bid is not None:  # sells at or below a client bid; buys executed at or below it
            mask |= moving & (price <= bid)
        if ask is not None:
            mask |= moving & (price >= ask)
        return mask

    def _one(self, e: np.void) -> None:
        k = int(e["kind"])
        side, price, qty, oid = int(e["side"]), int(e["price"]), int(e["qty"]), int(e["order_id"])
        self.now = max(self.now, int(e["exch_ts"]))
        if k == KIND_STATUS:
            if qty in _HALTS:
                self.halted = True
            elif qty == STATUS_OPEN:
                self.halted = False
            return
        if k == KIND_TRADE:
            self._on_print(side, price, qty)
            self._close_rows()
            return
        if k == KIND_CLEAR:
            self.book.apply(k, side, price, qty, order_id=oid)
            for c in self._orders.values():
                if side == NO_SIDE or c.side == side:
                    c.ahead.clear()
            self._consumed = {r: q for r, q in self._consumed.items() if self.book.order(r)}
            return
        before = self.book.order(oid)
        self.book.apply(k, side, price, qty, order_id=oid)
        after = self.book.order(oid)
        if k == KIND_ADD:
            if before is not None:  # an add of a live id replaces that order (L3 book rule)
                self._consumed.pop(oid, None)
                for c in self._levels.get((before[0], before[1]), ()):
                    c.ahead.discard(oid)
            if after is not None:
                self._on_incoming(oid, after[0], after[1], after[2])
                self._close_rows()
            return
        if before is None:
            return
        bside, bprice, bqty = before
        new_qty = 0 if after is None else after[2]
        c0 = self._consumed.pop(oid, 0)
        if c0 and after is not None:
            left = min(max(0, c0 - max(0, bqty - new_qty)), new_qty)
            if left:
                self._consumed[oid] = left
        if k == KIND_EXECUTE:
            self._exec_reaches(oid, bside, bprice, bqty - new_qty)
        lost = after is None or after[1] != bprice or new_qty > bqty
        if lost:
            for c in self._levels.get((bside, bprice), ()):
                c.ahead.discard(oid)
        if after is not None and lost:
            self._on_incoming(oid, after[0], after[1], after[2])
        self._close_rows()

    def _exec_reaches(self, oid: int, side: int, price: int, lots: int) -> None:
        """A replayed execution of ``oid`` (side, price): client orders the aggressor would
        have reached first fill, up to ``lots``."""
        for c in self._passive(side, price):
            if lots <= 0:
                break
            if c.price == price and oid in c.ahead:
                continue
            f = min(c.leaves, lots)
            lots -= f
            self._maker_fill(c, c.price, f)

    def _on_incoming(self, oid: int, side: int, price: int, qty: int) -> None:
        """A replayed order arrived (or moved) at ``price``: client orders of the other side
        at or through it trade with it as makers."""
        left = qty - self._consumed.get(oid, 0)
        taken = 0
        for c in self._passive(-side, price):
            if left <= 0:
                break
            f = min(c.leaves, left)
            left -= f
            taken += f
            self._maker_fill(c, c.price, f)
        if taken:
            self._watch_grew |= oid not in self._consumed
            self._consumed[oid] = self._consumed.get(oid, 0) + taken

    def _on_print(self, aggressor: int, price: int, qty: int) -> None:
        sides = (SELL, BUY) if aggressor == NO_SIDE else (-aggressor,)
        for s in sides:
            left = qty
            for c in self._passive(s, price):
                if left <= 0:
                    break
                if c.price == price and sum(self._available(r) for r in c.ahead) > 0:
                    continue
                f = min(c.leaves, left)
                left -= f
                self._maker_fill(c, c.price, f)

    def _passive(self, side: int, price: int) -> list[_Client]:
        """Resting client orders of ``side`` priced at or better than ``price`` for
        ``side``, in price-time order."""
        out: list[_Client] = []
        keys = [p for (s, p) in self._levels if s == side]
        keys.sort(reverse=side == BUY)
        for p in keys:
            better = p > price if side == BUY else p < price
            if not better and p != price:
                break
            out.extend(self._levels[(side, p)])
        return out

    def _client_best(self, side: int) -> int | None:
        prices = [p for (s, p) in self._levels if s == side]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def _available(self, oid: int) -> int:
        o = self.book.order(oid)
        if o is None:
            return 0
        return o[2] - self._consumed.get(oid, 0)

    # --- client orders --------------------------------------------------------------------
    def submit(self, owner: str, token: str, side: int, qty: int, price: int, *,
               ord_type: OrdType = OrdType.LIMIT, tif: Tif = Tif.DAY,
               ts: int | None = None) -> list[Report]:
        """A new client order; returns every report it caused (for every owner)."""
        if ts is not None:
            self.now = max(self.now, ts)
        out: list[Report] = []
        reason = Reason.NONE
        market = ord_type == OrdType.MARKET
        if side not in (BUY, SELL):
            reason = Reason.BAD_SIDE
        elif qty <= 0:
            reason = Reason.BAD_QTY
        elif not market and price <= 0:
            reason = Reason.BAD_PRICE
        elif ord_type not in (OrdType.LIMIT, OrdType.MARKET) or (market and tif == Tif.POST_ONLY):
            reason = Reason.BAD_TYPE
        elif self.halted:
            reason = Reason.HALTED
        elif tif == Tif.POST_ONLY and self._crosses(side, price):
            reason = Reason.POST_ONLY_WOULD_TAKE
        elif market and self._best_available(-side) is None:
            reason = Reason.NO_LIQUIDITY
        if reason != Reason.NONE:
            out.append(Report(ReportKind.REJECTED, owner, token, 0, side, price, qty, 0,
                              self.now, reason))
            return out
        c = _Client(self._next_id, owner, token, side, price, qty, qty,
                    Tif.IOC if market else tif)
        self._next_id += 1
        out.append(self._report(ReportKind.ACCEPTED, c, qty))
        self._take(c, out, market=market)
        if c.leaves > 0:
            if c.tif == Tif.IOC:
                left, c.leaves = c.leaves, 0
                out.append(self._report(ReportKind.CANCELED, c, left, Reason.IOC))
            else:
                self._rest(c)
        self._close_rows()
        return out

    def cancel(self, owner: str, order_id: int, leave_qty: int = 0, *,
               token: str = "") -> list[Report]:
        """Cancel a resting order, or reduce its open lots to ``leave_qty`` (keeps priority)."""
        c = self._orders.get(order_id)
        if c is None or c.owner != owner or leave_qty < 0:
            why = Reason.UNKNOWN_ORDER if leave_qty >= 0 else Reason.BAD_QTY
            return [Report(ReportKind.CANCEL_REJECTED, owner, token, order_id, 0, 0, 0, 0,
                           self.now, why)]
        if leave_qty >= c.leaves:  # nothing to take away
            return [Report(ReportKind.CANCEL_REJECTED, owner, token or c.token, order_id,
                           c.side, c.price, leave_qty, c.leaves, self.now, Reason.BAD_QTY)]
        gone = c.leaves - leave_qty
        if leave_qty == 0:
            self._unrest(c)
            c.leaves = 0
            self._row(KIND_DELETE, c.side, c.price, gone, c.ref)
        else:
            c.leaves = leave_qty
            c.qty -= gone
            self._row(KIND_CANCEL, c.side, c.price, gone, c.ref)
        self._close_rows()
        if token and token != c.token:  # a cancel request with a token of its own (FIX)
            old, c.token = c.token, token
            return [self._report(ReportKind.CANCELED, c, gone, Reason.USER, orig=old)]
        return [self._report(ReportKind.CANCELED, c, gone, Reason.USER)]

    def replace(self, owner: str, order_id: int, new_token: str, price: int, qty: int,
                *, ts: int | None = None) -> list[Report]:
        """Change a resting order's price and total size (``framework.kernel.venue`` rules)."""
        if ts is not None:
            self.now = max(self.now, ts)
        c = self._orders.get(order_id)
        why = Reason.NONE
        if c is None or c.owner != owner:
            why = Reason.UNKNOWN_ORDER
        elif qty <= 0:
            why = Reason.BAD_QTY
        elif price <= 0:
            why = Reason.BAD_PRICE
        elif self.halted:
            why = Reason.HALTED
        elif c.tif == Tif.POST_ONLY and price != c.price and self._crosses(c.side, price):
            why = Reason.POST_ONLY_WOULD_TAKE
        if why != Reason.NONE or c is None:
            side = 0 if c is None else c.side
            return [Report(ReportKind.CANCEL_REJECTED, owner, new_token, order_id, side, price,
                           qty, 0 if c is None else c.leaves, self.now, why)]
        filled = c.qty - c.leaves
        new_leaves = qty - filled
        if new_leaves <= 0:
            return self.cancel(owner, order_id, token=new_token)
        out: list[Report] = []
        lose = price != c.price or new_leaves > c.leaves
        old_token = c.token
        c.token = new_token
        if not lose:
            gone = c.leaves - new_leaves
            c.qty, c.leaves = qty, new_leaves
            if gone:
                self._row(KIND_CANCEL, c.side, c.price, gone, c.ref)
            out.append(self._report(ReportKind.REPLACED, c, qty, orig=old_token))
        else:
            self._unrest(c)
            self._row(KIND_DELETE, c.side, c.price, c.leaves, c.ref, FLAG_REPLACE)
            c.qty, c.leaves, c.price = qty, new_leaves, price
            out.append(self._report(ReportKind.REPLACED, c, qty, orig=old_token))
            self._take(c, out, market=False)
            if c.leaves > 0:
                self._rest(c, FLAG_REPLACE)
        self._close_rows()
        return out

    # --- matching internals ---------------------------------------------------------------
    def _crosses(self, side: int, price: int) -> bool:
        best = self._best_available(-side)
        return best is not None and (price >= best if side == BUY else price <= best)

    def _replayed_levels(self, side: int) -> list[int]:
        meta, qty = self.book.meta, self.book.qty
        p = int(l2_best_bid(meta, qty) if side == BUY else l2_best_ask(meta, qty))
        out = []
        while p != NO_PRICE:
            out.append(p)
            p = int(l2_next_level(meta, qty, side, p))
        return out

    def _price_walk(self, side: int) -> list[int]:
        """Prices of ``side`` holding replayed or client orders, best first."""
        prices = set(self._replayed_levels(side))
        prices.update(p for (s, p) in self._levels if s == side)
        return sorted(prices, reverse=side == BUY)

    def _best_available(self, side: int) -> int | None:
        for p in self._price_walk(side):
            if self.available(side, p) > 0:
                return p
        return None

    def _queue(self, side: int, price: int) -> list[int | _Client]:
        """One level's queue, front first: replayed ids and client orders by arrival."""
        ids = self.book.queue(side, price)
        pos = {r: i for i, r in enumerate(ids)}
        clients = self._levels.get((side, price), [])
        out: list[int | _Client] = []
        j = 0
        for c in clients:
            k = max((pos[r] + 1 for r in c.ahead if r in pos), default=0)
            while j < k:
                out.append(ids[j])
                j += 1
            out.append(c)
        out.extend(ids[j:])
        return out

    def _take(self, c: _Client, out: list[Report], *, market: bool) -> None:
        other = -c.side
        for p in self._price_walk(other):
            if c.leaves <= 0:
                break
            if not market and (p > c.price if c.side == BUY else p < c.price):
                break
            for q in self._queue(other, p):
                if c.leaves <= 0:
                    break
                if isinstance(q, _Client):
                    f = min(q.leaves, c.leaves)
                    if f <= 0:
                        continue
                    self._maker_fill(q, p, f, out)
                else:
                    f = min(self._available(q), c.leaves)
                    if f <= 0:
                        continue
                    self._consumed[q] = self._consumed.get(q, 0) + f
                    self._match += 1
                    self._row(KIND_TRADE, c.side, p, f, 0)
                c.leaves -= f
                out.append(self._report(ReportKind.EXECUTED, c, f, price=p, liq=LIQ_REMOVED))

    def _maker_fill(self, c: _Client, price: int, f: int, out: list[Report] | None = None) -> None:
        """A resting client order fills ``f`` lots at ``price``."""
        self._match += 1
        c.leaves -= f
        self._row(KIND_EXECUTE, c.side, price, f, c.ref)
        rep = self._report(ReportKind.EXECUTED, c, f, price=price, liq=LIQ_ADDED)
        (self._reports if out is None else out).append(rep)
        if c.leaves <= 0:
            self._unrest(c)

    def _rest(self, c: _Client, flags: int = 0) -> None:
        c.ref = self._next_ref
        self._next_ref += 1
        c.ahead = set(self.book.queue(c.side, c.price))
        self._levels.setdefault((c.side, c.price), []).append(c)
        self._orders[c.order_id] = c
        self._row(KIND_ADD, c.side, c.price, c.leaves, c.ref, flags)

    def _unrest(self, c: _Client) -> None:
        self._orders.pop(c.order_id, None)
        level = self._levels.get((c.side, c.price))
        if level is not None and c in level:
            level.remove(c)
            if not level:
                del self._levels[(c.side, c.price)]
        c.ahead = set()

    def _report(self, kind: ReportKind, c: _Client, qty: int, reason: Reason = Reason.NONE,
                *, price: int | None = None, liq: str = "", orig: str = "") -> Report:
        return Report(kind, c.owner, c.token, c.order_id, c.side,
                      c.price if price is None else price, qty, c.leaves, self.now, reason,
                      liq, self._match if kind == ReportKind.EXECUTED else 0, orig)

    def _row(self, kind: int, side: int, price: int, qty: int, ref: int, flags: int = 0) -> None:
        self._rows.append((self.now, self.now, price, qty, ref, self.instrument, kind, side,
                           flags))

    def _close_rows(self) -> None:
        """Mark the last row of an action (the feed's book is consistent after it)."""
        if self._rows and not self._rows[-1][8] & FLAG_LAST:
            r = self._rows[-1]
            self._rows[-1] = (*r[:8], r[8] | FLAG_LAST)


__all__ = [
    "CLIENT_REF_BASE",
    "LIQ_ADDED",
    "LIQ_REMOVED",
    "Matcher",
    "OrdType",
    "Reason",
    "Report",
    "ReportKind",
    "Tif",
]
