"""Exact decimals from text: parse decimal strings to scaled integers, infer and apply grids.

Prices and sizes in text feeds are decimals that floats would round. :class:`Scaled` holds them
as integers times ``10**-scale``; :func:`parse_decimals` parses strings exactly,
:func:`floats_to_scaled` snaps floats back to the decimal grid they were written on,
:func:`step_of_scale` gives the finest power-of-ten grid a scale implies and :func:`to_grid`
turns values into integer multiples of a tick or lot size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import ConfigError, DataError

I64 = npt.NDArray[np.int64]
_MAX_SCALE = 18  # int64 holds 18 decimal digits safely


@dataclass(frozen=True)
class Scaled:
    """Exact decimals as integers: ``value * 10**-scale``; ``bad`` marks unparseable ones."""

    value: I64
    scale: int
    bad: npt.NDArray[np.bool_]

    @staticmethod
    def zeros(n: int) -> Scaled:
        return Scaled(np.zeros(n, np.int64), 0, np.zeros(n, np.bool_))

    def rescaled(self, scale: int) -> Scaled:
        """The same numbers at a finer ``scale`` (values that would overflow become bad)."""
        if scale == self.scale:
            return self
        mul = 10 ** (scale - self.scale)
        lim = np.iinfo(np.int64).max // mul
        over = np.abs(self.value) > lim
        value = np.where(over, 0, self.value) * mul
        return Scaled(value.astype(np.int64), scale, self.bad | over)

    def significant_scale(self) -> int:
        """Fewest decimals that still represent every good value exactly."""
        v = self.value[~self.bad]
        v = v[v != 0]
        d = self.scale
        while d > 0 and v.size and not np.any(v % (10 ** (self.scale - d + 1))):
            d -= 1
        return d if v.size else 0


_DEC_RE = r"^[+-]?(\d+\.?\d*|\.\d+)$"


def parse_decimals(values: Sequence[str | None] | pl.Series) -> Scaled:
    """Parse decimal strings exactly (vectorised; exponent forms fall back to Decimal).

    >>> s = parse_decimals(["61837.63000000", "0.1", "-2", "x"])
    >>> s.value.tolist(), s.scale, s.bad.tolist()
    ([6183763, 10, -200, 0], 2, [False, False, False, True])
    """
    s = values if isinstance(values, pl.Series) else pl.Series("s", values, dtype=pl.String)
    df = pl.DataFrame({"s": s.cast(pl.String).str.strip_chars()})
    df = df.with_columns(
        ok=pl.col("s").str.contains(_DEC_RE).fill_null(False),
        expo=pl.col("s").str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$").fill_null(False),
        neg=pl.col("s").str.starts_with("-").fill_null(False),
    ).with_columns(
        ip=pl.col("s").str.extract(r"^[+-]?(\d*)", 1).str.strip_chars_start("0"),
        fr=pl.col("s").str.extract(r"\.(\d*)$", 1).fill_null("").str.strip_chars_end("0"),
    )
    ok = df["ok"].to_numpy()
    fr_len = df["fr"].str.len_chars().to_numpy()
    ip_len = df["ip"].fill_null("").str.len_chars().to_numpy()
    scale = int(fr_len[ok].max()) if ok.any() else 0
    bad = ~ok | (ip_len + scale > _MAX_SCALE)
    if scale > _MAX_SCALE:
        msg = f"decimal values with {scale} fractional digits do not fit int64 at full precision"
        raise DataError(msg)
    good = pl.Series(~bad)
    ip = df["ip"].fill_null("").zip_with(good, pl.Series(["0"] * len(df)))
    ipv = ip.replace("", "0").cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    value = ipv * (10**scale)
    if scale:
        frs = df["fr"].zip_with(good, pl.Series([""] * len(df))).str.pad_end(scale, "0")
        value = value + frs.cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    value = np.where(df["neg"].to_numpy(), -value, value).astype(np.int64)
    out = Scaled(value, scale, bad)
    expo = df["expo"].to_numpy()
    if expo.any():
        out = _merge_exponents(out, df["s"].to_numpy()[expo], np.flatnonzero(expo))
    return out


def _merge_exponents(base: Scaled, texts: Any, where: npt.NDArray[np.intp]) -> Scaled:
    """Fold exponent-form numbers (``1e-05``, as Tardis writes tiny sizes) into ``base``."""
    decs = [Decimal(str(t)).normalize() for t in texts]
    exps = [int(d.as_tuple().exponent) for d in decs]
    scale = max(base.scale, *(max(0, -e) for e in exps))
    scale = min(scale, _MAX_SCALE)
    out = base.rescaled(scale)
    value, bad = out.value.copy(), out.bad.copy()
    for i, d in zip(where, decs, strict=True):
        q = d.scaleb(scale)
        ok = q == q.to_integral_value() and abs(q) < 2**63
        value[i] = int(q) if ok else 0
        bad[i] = not ok
    return Scaled(value, scale, bad)


def floats_to_scaled(x: npt.ArrayLike, max_scale: int = 12) -> Scaled:
    """Snap floats to the coarsest decimal grid (<= ``max_scale`` places) each sits on.

    A float such as ``0.00031099999999999997`` is ``0.000311`` written by binary arithmetic;
    it is taken as 311e-6. Values on no grid up to ``max_scale`` are bad.

    >>> s = floats_to_scaled([39432.48, 0.00031099999999999997, 2.0])
    >>> s.value.tolist(), s.scale
    ([39432480000, 311, 2000000], 6)
    """
    a = np.asarray(x, dtype=np.float64)
    need = np.full(a.shape, -1, np.int64)
    finite = np.isfinite(a)
    for d in range(max_scale + 1):
        v = a * 10.0**d
        r = np.rint(v)
        hit = finite & (need < 0) & (np.abs(v - r) <= 1e-6 + 4 * np.spacing(np.abs(v)))
        need[hit] = d
    bad = need < 0
    scale = int(need[~bad].max()) if (~bad).any() else 0
    v = np.where(bad, 0.0, a) * 10.0**scale
    over = np.abs(v) >= 9.2e18
    bad |= over
    return Scaled(np.rint(np.where(over, 0.0, v)).astype(np.int64), scale, bad)


def concat_scaled(parts: Sequence[Scaled]) -> Scaled:
    """Concatenate at the finest scale among ``parts``."""
    if not parts:
        return Scaled.zeros(0)
    scale = max(p.scale for p in parts)
    rs = [p.rescaled(scale) for p in parts]
    return Scaled(
        np.concatenate([p.value for p in rs]), scale, np.concatenate([p.bad for p in rs])
    )


def step_of_scale(scale: int) -> Decimal:
    """``10**-scale`` as a Decimal (the grid a value with ``scale`` decimals sits on)."""
    return Decimal(1).scaleb(-scale)


def to_grid(s: Scaled, step: Decimal) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Integer multiples of ``step``; second array marks values off the grid (or bad)."""
    exp = step.normalize().as_tuple().exponent
    scale = max(s.scale, -int(exp) if isinstance(exp, int) else 0)
    s = s.rescaled(scale)
    unit = step.scaleb(scale)
    if unit != unit.to_integral_value():
        msg = f"step {step} is finer than {step_of_scale(scale)}"
        raise ConfigError(msg)
    u = int(unit)
    q, r = np.divmod(s.value, u)
    return q.astype(np.int64), (r != 0) | s.bad

