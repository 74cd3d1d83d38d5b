"""Secrets handed to people or programs (invite links, API keys): only their hash is ever stored."""

import hashlib
import secrets


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: the secrets are random and long, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()
