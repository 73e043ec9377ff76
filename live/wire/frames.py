"""What every stream decoder of ``live.wire`` hands back for a frame it cannot accept."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame a reader could not accept: ``reason`` says why in one line, ``data`` holds
    (the start of) the bytes, ``fatal`` is set when the stream cannot be resynced and the
    session must end."""

    reason: str
    data: bytes
    fatal: bool = False


__all__ = ["BadFrame"]
