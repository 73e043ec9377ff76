"""Reference books for tests of the compiled books: plain dicts of price -> lots (and, for
L3, of orders with an arrival number for queue priority). Obviously right, slow, and
indifferent to how far a price is from the touch."""

from __future__ import annotations

from framework.book.l2 import NO_PRICE
from framework.core.events import (
    BUY,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    SELL,
)


def _snapshot(depth: dict[int, list[list[int]]], levels: int) -> list[int]:
    """LOBSTER column order: ask price, ask lots, bid price, bid lots per level."""
    row: list[int] = []
    for k in range(levels):
        for side in (SELL, BUY):
            d = depth[side]
            row += d[k] if k < len(d) else [NO_PRICE, 0]
    return row


class RefL2:
    """Price levels with the L2 book's rules: a level set to 0 goes, a level set on one side
    removes the opposite levels it crosses (stale), a BBO removes its side's better
    levels, a clear empties a side (0 = both). Other kinds change nothing."""

    def __init__(self) -> None:
        self.levels: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}

    def apply(self, kind: int, side: int, price: int, qty: int) -> None:
        if kind == KIND_CLEAR:
            for s in (BUY, SELL):
                if side in (0, s):
                    self.levels[s].clear()
        elif kind == KIND_BBO and side:
            better = [p for p in self.levels[side] if (p > price if side == BUY else p < price)]
            for p in better:
                del self.levels[side][p]
            self._set(side, price, qty)
        elif kind == KIND_LEVEL and side:
            self._set(side, price, qty)

    def _set(self, side: int, price: int, qty: int) -> None:
        if qty == 0:
            self.levels[side].pop(price, None)
            return
        self.levels[side][price] = qty
        other = self.levels[-side]
        for p in [p for p in other if (p <= price if side == BUY else p >= price)]:
            del other[p]

    def depth(self, side: int) -> list[list[int]]:
        """Every level of ``side``, best first, as [price, lots]."""
        lv = self.levels[side]
        return [[p, lv[p]] for p in sorted(lv, reverse=side == BUY)]

    def snapshot(self, levels: int) -> list[int]:
        return _snapshot({s: self.depth(s) for s in (BUY, SELL)}, levels)


class RefL3:
    """Orders by id with the L3 book's rules; a level's queue is its orders by arrival."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, lots, arrival]
        self.seq = 0

    def _join(self, oid: int, side: int, price: int, qty: int) -> None:
        self.seq += 1
        self.orders[oid] = [side, price, qty, self.seq]

    def apply(self, kind: int, oid: int, side: int, price: int, qty: int) -> None:
        if kind == KIND_CLEAR:
            for k in [k for k, o in self.orders.items() if side in (0, o[0])]:
                del self.orders[k]
            return
        if kind == KIND_ADD:
            if qty > 0 and side != 0:
                self.orders.pop(oid, None)
                self._join(oid, side, price, qty)
            return
        o = self.orders.get(oid)
        if o is None:
            return
        if kind in (KIND_CANCEL, KIND_EXECUTE):
            o[2] -= qty
            if o[2] <= 0:
                del self.orders[oid]
        elif kind == KIND_DELETE or (kind == KIND_MODIFY and qty <= 0):
            del self.orders[oid]
        elif kind == KIND_MODIFY:
            if price == o[1] and qty <= o[2]:
                o[2] = qty  # a smaller size keeps the place in the queue
            else:
                self._join(oid, o[0], price, qty)

    def level_qty(self, side: int) -> dict[int, int]:
        out: dict[int, int] = {}
        for s, p, q, _ in self.orders.values():
            if s == side:
                out[p] = out.get(p, 0) + q
        return out

    def depth(self, side: int) -> list[list[int]]:
        lv = self.level_qty(side)
        return [[p, lv[p]] for p in sorted(lv, reverse=side == BUY)]

    def queue(self, side: int, price: int) -> list[int]:
        """Order ids at a level, front first."""
        at = [(o[3], k) for k, o in self.orders.items() if o[0] == side and o[1] == price]
        return [k for _, k in sorted(at)]

    def snapshot(self, levels: int) -> list[int]:
        return _snapshot({s: self.depth(s) for s in (BUY, SELL)}, levels)
