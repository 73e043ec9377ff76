"""An OpenAI-compatible ``chat/completions`` client for headline sentiment.

Request: ``POST {base}/chat/completions`` with ``Authorization: Bearer KEY`` and
``{"model", "temperature": 0, "response_format": {"type": "json_object"}, "messages":
[system, user]}``; the user message is ``{"headlines": [...]}`` as JSON. The answer's
``choices[0].message.content`` must be JSON ``{"scores": [...]}``: one number in [-1, 1]
per headline, in order. Anything else -- no connection, a timeout, an HTTP error, another
shape -- is a :class:`~research.news.client.NewsEndpointError` whose text names the URL and
what went wrong, never the key.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from research.news.client import NewsEndpointError

SYSTEM = (
    "You score financial news headlines for traders. For each headline give one number "
    "from -1 (clearly bad news for the instrument it concerns) through 0 (neutral or no "
    "news) to +1 (clearly good news). Answer with JSON only: {\"scores\": [numbers]}, one "
    "number per headline, in the order given."
)
BATCH = 50  #: headlines per request


class OpenAICompatClient:
    """Headline sentiment from an OpenAI-compatible endpoint."""

    def __init__(self, url: str, key: str, *, model: str = "gpt-4o-mini",
                 timeout_s: float = 10.0) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.__key = key  # private: only the Authorization header reads it (repr hides it)
        self.model = model
        self.timeout_s = timeout_s
        self.name = f"remote:{model}"

    def __repr__(self) -> str:
        return f"OpenAICompatClient(url={self.url!r}, model={self.model!r}, key=<hidden>)"

    def sentiment(self, headlines: Sequence[str]) -> list[float]:
        out: list[float] = []
        for k in range(0, len(headlines), BATCH):
            out += self._batch(list(headlines[k : k + BATCH]))
        return out

    def request_body(self, headlines: list[str]) -> dict[str, Any]:
        return {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": json.dumps({"headlines": headlines})},
            ],
        }

    def _batch(self, headlines: list[str]) -> list[float]:
        req = urllib.request.Request(
            self.url, data=json.dumps(self.request_body(headlines)).encode(), method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Authorization": f"Bearer {self.__key}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # its body stays unread: the error text may echo what was sent
            msg = f"{self.url} answered HTTP {exc.code} {exc.reason}"
            raise NewsEndpointError(msg) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            msg = f"{self.url} is unreachable ({why})"
            raise NewsEndpointError(msg) from None
        return self._scores(raw, len(headlines))

    def _scores(self, raw: bytes, n: int) -> list[float]:
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
            scores = json.loads(content)["scores"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            msg = (f"{self.url}: the answer is not a chat completion whose content is "
                   f"{{\"scores\": [...]}} ({type(exc).__name__})")
            raise NewsEndpointError(msg) from None
        if not isinstance(scores, list) or len(scores) != n:
            msg = f"{self.url}: expected {n} scores, got {scores!r:.80}"
            raise NewsEndpointError(msg)
        out = []
        for s in scores:
            if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) \
                    or not -1.0 <= s <= 1.0:
                msg = f"{self.url}: score {s!r:.40} is not a number in [-1, 1]"
                raise NewsEndpointError(msg)
            out.append(float(s))
        return out


__all__ = ["OpenAICompatClient"]
