"""``hftlab news``: score headlines into the sentiment stream; the offline model's accuracy."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add ``hftlab news`` to the ``hftlab`` parser ``sub``."""
    news = sub.add_parser("news", help="news sentiment per instrument (a feature stream "
                          "stored beside the ticks)")
    nsub = news.add_subparsers(dest="news_command", required=True, metavar="SUBCOMMAND")
    sc = nsub.add_parser(
        "score", parents=[store_parent],
        help="score a CSV of headlines (ts,headline[,symbol]) and store the stream",
        description=(
            "Score each headline in [-1, 1] and store the rows as "
            "<store>/<VENUE>/<SYMBOL>/<DAY>.news.parquet. The remote OpenAI-compatible model "
            "when $HFTLAB_NEWS_URL and $HFTLAB_NEWS_KEY are set ($HFTLAB_NEWS_MODEL names "
            "the model), else -- or if it fails -- the offline TF-IDF model."
        ),
    )
    sc.add_argument("file", metavar="FILE.csv", help="ts (ns or ISO 8601),headline[,symbol]")
    sc.add_argument("--symbol", help="the instrument (all rows without a symbol column; "
                    "with one: only its rows)")
    sc.add_argument("--venue", required=True, help="the instrument's venue in the store")
    sc.add_argument("--offline", action="store_true", help="the offline model, whatever "
                    "the environment says")
    sc.set_defaults(func=_cmd_score)
    ev = nsub.add_parser("eval", help="the offline model's accuracy on a held-out split of "
                         "its shipped headlines")
    ev.add_argument("--seed", type=int, default=0, help="of the split (default 0)")
    ev.set_defaults(func=_cmd_eval)


def _cmd_score(args: argparse.Namespace) -> int:
    from research.news import stream
    from research.news.client import client_from_env
    from research.news.offline import default_model

    # the one line that says the remote model is not used goes to stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hftlab: %(message)s"))
    logger = logging.getLogger("hftlab.news")
    logger.addHandler(handler)
    try:
        rows = stream.read_headlines_csv(args.file, symbol=args.symbol)
        client = default_model() if args.offline else client_from_env()
        scored = stream.score(rows, client)
        paths = stream.write(args.store, args.venue, scored)
    finally:
        logger.removeHandler(handler)
    if len(scored):
        vals = scored["score"].to_list()
        print(f"scored {len(scored):,} headline(s) with {scored['model'][0]}; mean score "
              f"{sum(vals) / len(vals):+.3f}")
    else:
        print("no headline to score")
    for p in paths:
        print(f"  {p}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from research.news.offline import evaluate

    e = evaluate(seed=args.seed)
    print(f"offline news model: held-out accuracy {e.accuracy:.3f} on {e.n_test} headlines "
          f"(trained on {e.n_train}; most-common-label baseline {e.baseline:.3f}; seed {e.seed})")
    return 0
