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
