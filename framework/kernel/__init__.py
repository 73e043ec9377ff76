"""The compiled kernel: the simulated venue, the local order path, the replay loop.

Above the arena (:mod:`framework.arena`), risk (:mod:`framework.risk`) and portfolio
(:mod:`framework.portfolio`); below the strategy API (:mod:`framework.strategy`) and the
drivers (:mod:`framework.engine`). :mod:`.core` compiles the entry points once per machine;
:mod:`.seam` is the order seam a gateway plugs into; :mod:`.recorder` decodes the result rows.
"""
