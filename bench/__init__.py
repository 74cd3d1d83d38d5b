"""Benchmarks: `make bench` (python -m bench) against PostgreSQL. Markdown on stdout, progress on stderr.

Each module has a `main()`; bench/__main__.py runs them in order. They rebuild the benchmark database's
tables first (DATABASE_URL must point at a database made for this; it is wiped).
"""
