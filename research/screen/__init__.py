"""Vectorised signal screening: bars from the store, signals over parameter grids, one
vectorbt portfolio for the whole grid, and the chosen signal as a tick-level strategy.

``bars`` needs only the framework; ``screen`` needs vectorbt (``pip install
'hftlab[research]'``), imported when a screen runs.
"""

from research.screen.bars import BAR_SCHEMA, bars

__all__ = ["BAR_SCHEMA", "bars"]
