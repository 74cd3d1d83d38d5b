"""The mailing tests' helpers live in tests/conftest.py (the local relay is used across apps)."""

from tests.conftest import free_port  # noqa: F401  (imported by many test modules from here)
