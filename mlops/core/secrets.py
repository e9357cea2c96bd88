"""What counts as a secret in configuration, and how it is kept out of sight.

Secrets live only in ``.mlops/config.local.yaml`` (mode 0600, ignored by Git). Every
place that shows configuration masks them with ``MASK``; the committed config refuses
them, naming the ``--local`` way.
"""

from __future__ import annotations

import re
from typing import Any

# Option names whose values are credentials: stored only with --local, never shown.
SECRET_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "password",
        "passphrase",
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "credentials",
    }
)
MASK = "***"
# ``scheme://user:password@host``: the password part of a URL.
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@]*):([^/@]*)@")
# Query parameters that carry a credential: tokens, signed-URL signatures, Azure SAS.
_QUERY_SECRET = re.compile(
    r"([?&;](?:[a-z0-9_.-]*(?:token|secret|passw|signature|credential)[a-z0-9_.-]*"
    r"|sig|key|apikey|api_key|access_key|auth)=)([^&#;]*)",
    re.IGNORECASE,
)


def url_password(url: str) -> str | None:
    """The password of ``scheme://user:password@host...``, or None."""
    match = _URL_PASSWORD.match(url)
    return match.group(2) if match and match.group(2) else None


def url_secrets(url: str) -> list[str]:
    """Every credential embedded in ``url``: its password and secret query values."""
    found = [password] if (password := url_password(url)) else []
    return found + [m.group(2) for m in _QUERY_SECRET.finditer(url) if m.group(2)]


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``."""
    url = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", url)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + (MASK if m.group(2) else ""), url)


def is_secret_key(key: str) -> bool:
    """Whether a config key (its last dotted part) names a credential."""
    return key.rsplit(".", 1)[-1] in SECRET_KEYS


def masked(value: Any, key: str = "") -> Any:
    """``value`` (a config value or section under ``key``) with every secret masked."""
    if isinstance(value, dict):
        prefix = f"{key}." if key else ""
        return {k: masked(v, f"{prefix}{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if key and is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def committed_secret(key: str, value: Any) -> str | None:
    """Why ``value`` may not go into the committed config under ``key`` (None: it may)."""
    if isinstance(value, dict):
        for k, v in value.items():
            reason = committed_secret(f"{key}.{k}", v)
            if reason:
                return reason
        return None
    if is_secret_key(key) and value not in (None, ""):
        return f"{key} is a secret"
    if isinstance(value, str) and url_secrets(value):
        return f"{key}: the URL holds a credential ({mask_url(value)})"
    return None
