"""Remote settings: ``remote.<name>`` in .mlops/config.yaml, secrets only in config.local.yaml.

A remote is a URL plus options. Options are passed to the fsspec filesystem
(``endpoint_url``, ``profile``, ...) except the few mlops reads itself (``pack``,
``timeout``: seconds to wait for the server to answer, ``connect_timeout``,
``read_timeout``, ``retries``). ``core.remote`` names the
default remote.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.core.repo import (
    CONFIG_FILE,
    LOCAL_CONFIG_FILE,
    Repo,
    _read_config,
    config_set,
    config_unset,
    parse_config_value,
)
from mlops.core.secrets import MASK, SECRET_KEYS, mask_url, url_secrets
from mlops.errors import ConfigError, RemoteError

# Options that are a number of seconds.
TIMEOUT_KEYS = frozenset({"timeout", "connect_timeout", "read_timeout"})
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)


@dataclass(frozen=True)
class RemoteSpec:
    """One configured remote: its name, URL and options (secrets included, never shown)."""

    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False

    @property
    def secrets(self) -> list[str]:
        """The secret values this remote holds, so that messages can be scrubbed of them."""
        values = [str(v) for k, v in self.options.items() if k in SECRET_KEYS and v]
        return values + url_secrets(self.url)

    def to_dict(self) -> dict[str, Any]:
        """A printable form: secrets masked."""
        options = {k: MASK if k in SECRET_KEYS else v for k, v in self.options.items()}
        return {"name": self.name, "url": mask_url(self.url), "default": self.default, **options}


def split_url(url: str) -> tuple[str | None, str]:
    """``(scheme, rest)`` of a URL; ``(None, url)`` for a plain path (no fsspec import)."""
    match = _SCHEME.match(url)
    return (match.group(1).lower(), match.group(2)) if match else (None, url)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (for error messages)."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def list_remotes(repo: Repo) -> list[RemoteSpec]:
    """Every configured remote (both config files merged), sorted by name."""
    config = repo.config()
    section = config.get("remote") or {}
    if not isinstance(section, dict):
        raise ConfigError("remote in .mlops/config.yaml must be a mapping of remote names")
    default = (config.get("core") or {}).get("remote")
    remotes = []
    for name, body in sorted(section.items()):
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ConfigError(f"remote.{name} in .mlops/config.yaml: missing key 'url'")
        options = {k: v for k, v in body.items() if k != "url"}
        remotes.append(RemoteSpec(str(name), body["url"], options, name == default))
    return remotes


def get_remote(repo: Repo, name: str | None = None) -> RemoteSpec:
    """The remote called ``name``, or the default one (``core.remote``)."""
    remotes = {r.name: r for r in list_remotes(repo)}
    known = ", ".join(remotes) or "none"
    if name is None:
        name = (repo.config().get("core") or {}).get("remote")
        if not name:
            raise RemoteError(
                f"no default remote (configured: {known}); pass -r NAME or set one with "
                "`mlops remote add NAME URL --default`"
            )
        if name not in remotes:
            raise ConfigError(
                f"core.remote in .mlops/config.yaml names remote {name!r}, "
                f"which is not configured (configured: {known})"
            )
    if name not in remotes:
        raise RemoteError(
            f"unknown remote {name!r} (configured: {known}); add it with "
            f"`mlops remote add {name} URL`"
        )
    return remotes[name]


def check_remote_name(name: str) -> None:
    """A remote name is letters, digits, '-' and '_'; anything else is a ConfigError."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"invalid remote name {name!r}: use letters, digits, '-' and '_' only")


def add_remote(
    repo: Repo, name: str, url: str, default: bool = False, local: bool = False
) -> RemoteSpec:
    """Configure a new remote; with ``default`` it becomes ``core.remote``."""
    check_remote_name(name)
    if any(r.name == name for r in list_remotes(repo)):
        raise ConfigError(
            f"remote {name!r} already exists; change it with `mlops remote modify {name} url URL`"
        )
    url = _normalise_url(repo, url, name, local)
    config_set(repo, f"remote.{name}.url", url, local)
    if default:
        config_set(repo, "core.remote", name, local)
    return get_remote(repo, name)


def modify_remote(repo: Repo, name: str, key: str, value: str, local: bool = False) -> None:
    """Set one option of a remote (``url`` included); secrets require ``local``."""
    get_remote(repo, name)
    if not _KEY.fullmatch(key):
        raise ConfigError(f"remote.{name}: invalid option name {key!r}")
    if key in SECRET_KEYS:
        if not local:
            raise ConfigError(
                f"remote.{name}.{key} is a secret: store it with --local "
                "(in .mlops/config.local.yaml, which Git ignores)"
            )
        typed: Any = value
    elif key == "url":
        typed = _normalise_url(repo, value, name, local)
    else:
        typed = parse_config_value(value)
        if key in TIMEOUT_KEYS and (
            isinstance(typed, bool) or not isinstance(typed, int | float) or not typed > 0
        ):
            raise ConfigError(
                f"remote.{name}.{key} must be a number of seconds above 0, not {value!r}"
            )
    config_set(repo, f"remote.{name}.{key}", typed, local)


def remove_remote(repo: Repo, name: str) -> None:
    """Forget a remote in both config files (and as the default)."""
    get_remote(repo, name)
    for local in (False, True):
        for key in (f"remote.{name}", "core.remote"):
            if key == "core.remote" and _file_value(repo, key, local) != name:
                continue
            if _file_value(repo, key, local) is not None:
                config_unset(repo, key, local)


def _file_value(repo: Repo, key: str, local: bool) -> Any:
    """A dotted key's value in one config file (not merged), or None."""
    node: Any = _read_config(repo.mlops_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE))
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _normalise_url(repo: Repo, url: str, name: str, local: bool) -> str:
    """Validate ``url``; make a relative folder path relative to the repository root."""
    if not url:
        raise ConfigError(f"remote.{name}: the URL is empty")
    if url_secrets(url) and not local:
        raise ConfigError(
            f"remote.{name}: the URL holds a credential ({mask_url(url)}); store it with "
            f"`mlops remote add {name} URL --local` (in .mlops/config.local.yaml, which Git "
            "ignores) or use a credential option"
        )
    protocol, path = split_url(url)
    if protocol in (None, "file", "local"):
        # Stored relative to the root, so that clones in sibling folders share it.
        absolute = os.path.abspath(path)
        return absolute if os.path.isabs(path) else os.path.relpath(absolute, repo.root)
    from fsspec.registry import known_implementations, registry

    if protocol not in known_implementations and protocol not in registry:
        raise ConfigError(f"remote.{name}: unknown URL scheme {protocol!r} in {mask_url(url)}")
    return url
