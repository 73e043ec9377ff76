"""Small asyncio helpers shared by the live sockets."""

from __future__ import annotations

import asyncio


async def read_within(reader: asyncio.StreamReader, n: int, seconds: float) -> bytes | None:
    """``reader.read(n)``, or None when nothing came within ``seconds``.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: no task per read (wait_for's task
    cost a sizeable share of an order's round trip on loopback).
    """
    try:
        async with asyncio.timeout(seconds):
            return await reader.read(n)
    except TimeoutError:
        return None


class ConnectionSet:
    """The open connections of a server. Each connection handler registers itself;
    :meth:`close` ends them all by closing their sockets (the handlers read EOF and finish
    on their own), cancelling only a handler that does not finish within ``timeout``
    (asyncio's stream callback logs a cancelled handler as an error)."""

    def __init__(self) -> None:
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    def add(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = writer

    def discard(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open.pop(task, None)

    async def close(self, timeout: float = 2.0) -> None:
        for w in self._open.values():
            w.close()
        tasks = list(self._open)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
