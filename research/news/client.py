"""The text-client interface and the choice of client from the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from framework.core.errors import HftlabError

log = logging.getLogger("hftlab.news")

URL_ENV = "HFTLAB_NEWS_URL"  #: base URL of an OpenAI-compatible API (``.../v1``)
KEY_ENV = "HFTLAB_NEWS_KEY"  #: its API key (sent as a bearer token, never logged)
MODEL_ENV = "HFTLAB_NEWS_MODEL"  #: the model name to ask for


class NewsEndpointError(HftlabError):
    """The remote endpoint could not be reached or gave an answer of the wrong shape."""


@runtime_checkable
class TextClient(Protocol):
    """Scores headlines: one sentiment in [-1, 1] per headline (-1 bad news for the
    instrument, +1 good, 0 neutral), in order. ``name`` says which model scored."""

    @property
    def name(self) -> str: ...

    def sentiment(self, headlines: Sequence[str]) -> list[float]: ...


class FallbackClient:
    """A remote client that falls back to the offline model at its first failure, saying
    so once (one log line), and stays there for the rest of the session."""

    def __init__(self, primary: TextClient, fallback: TextClient) -> None:
        self.primary, self.fallback = primary, fallback
        self.failed: str | None = None  #: why the primary was given up

    @property
    def name(self) -> str:
        return self.fallback.name if self.failed else self.primary.name

    def sentiment(self, headlines: Sequence[str]) -> list[float]:
        if self.failed is None:
            try:
                return self.primary.sentiment(headlines)
            except NewsEndpointError as exc:
                self.failed = str(exc)
                log.warning("news: %s; using the offline model (%s) instead", exc,
                            self.fallback.name)
        return self.fallback.sentiment(headlines)

    def __repr__(self) -> str:
        return f"FallbackClient({self.primary!r}, {self.fallback!r})"


def client_from_env(env: Mapping[str, str] | None = None, *,
                    timeout_s: float = 10.0) -> TextClient:
    """The remote client (``HFTLAB_NEWS_URL`` + ``HFTLAB_NEWS_KEY``, falling back to the
    offline model if it fails) or the offline model. A URL without a key is said in one
    line and gives the offline model."""
    from research.news.offline import default_model
    from research.news.remote import OpenAICompatClient

    e = os.environ if env is None else env
    url, key = e.get(URL_ENV, "").strip(), e.get(KEY_ENV, "").strip()
    if not url:
        return default_model()
    if not key:
        log.warning("news: $%s is set but $%s is not; using the offline model", URL_ENV,
                    KEY_ENV)
        return default_model()
    remote = OpenAICompatClient(url, key, model=e.get(MODEL_ENV) or "gpt-4o-mini",
                                timeout_s=timeout_s)
    return FallbackClient(remote, default_model())


__all__ = ["KEY_ENV", "MODEL_ENV", "URL_ENV", "FallbackClient", "NewsEndpointError",
           "TextClient", "client_from_env"]
