"""The arena: the compiled engine's whole state in one int64 array, and what reads it alone.

The lowest layer of the engine: the layout of the arena (:mod:`.state`), the codes it holds
(:mod:`.enums`), the order slots and message queues (:mod:`.messages`), the latency and queue
models (:mod:`.models`) and calls through function addresses (:mod:`.fnptr`). Risk and
portfolio sit above it, the compiled kernel (venue, local order path, replay loop) above
those, the strategy API above the kernel, and the drivers (:mod:`framework.engine`) on top.
Each import points down.
"""
