"""Reference strategies for hftlab, written against the public Strategy API."""
