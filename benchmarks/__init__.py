"""hftlab benchmarks: ``python -m benchmarks [--json] [--quick] [NAME ...]`` (or ``make bench``)."""
