"""News sentiment per instrument, as a timestamped feature stream stored beside the ticks.

* :mod:`research.news.client`: the text-client interface (:class:`TextClient`: headlines in,
  sentiment scores in [-1, 1] out) and :func:`client_from_env`, which picks the remote
  client when ``HFTLAB_NEWS_URL`` and ``HFTLAB_NEWS_KEY`` are set and otherwise, or when the
  endpoint fails, the offline model -- saying so in one line;
* :mod:`research.news.remote`: an OpenAI-compatible ``chat/completions`` client (the key is
  sent in the Authorization header only: never logged, never in an error or a repr);
* :mod:`research.news.offline`: TF-IDF + logistic regression (scikit-learn) trained on the
  headline set shipped in ``data/headlines.csv`` (346 headlines written by hand, labelled
  positive / negative / neutral), with its held-out accuracy;
* :mod:`research.news.stream`: scored headlines as ``<root>/<VENUE>/<SYMBOL>/<DAY>.news.parquet``
  beside the store's days, read back by time.
"""
