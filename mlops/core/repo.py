"""Find the Git work tree and ``.mlops/``; load and change configuration."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.fsutil import atomic_write_bytes, atomic_write_text
from mlops.core.secrets import committed_secret
from mlops.core.yamlio import (
    MAX_YAML_BYTES,
    Lines,
    YamlProblem,
    key_hint,
    line_at,
    load_yaml_lines,
    parse_yaml,
    parsed_cache_dir,
)
from mlops.errors import ConfigError, LockedError, NotARepoError

MLOPS_DIR = ".mlops"
CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_CONFIG: dict[str, Any] = {"cache": {"link": ["reflink", "copy"]}}
# What the config files may hold: section -> its keys (empty: names the user chooses).
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "cache": ("link",),
    "core": ("remote", "fsmonitor"),
    "remote": (),
    "run": ("executor", "scheduler"),
}

# What ``.mlops/.gitignore`` keeps out of Git: everything per machine.
_MLOPS_GITIGNORE = (
    "/config.local.yaml\n/cache/\n/tmp/\n/corrupt/\n/state.db*\n/runs.db*\n/monitor.db*\n/lock\n"
)


@dataclass(frozen=True)
class Repo:
    """A Git work tree with an ``.mlops/`` folder."""

    root: Path

    @property
    def mlops_dir(self) -> Path:
        return self.root / MLOPS_DIR

    @property
    def cache_dir(self) -> Path:
        return self.mlops_dir / "cache"

    @property
    def tmp_dir(self) -> Path:
        return self.mlops_dir / "tmp"

    @property
    def scratch_dir(self) -> Path:
        """Where files bound for the workspace are written before their rename: on the
        work tree's file system, ignored by Git, swept of what a killed command left."""
        return self.tmp_dir / "work"

    def config(self) -> dict[str, Any]:
        """The merged configuration: defaults, then ``config.yaml``, then the local file."""
        merged = _deep_merge({}, DEFAULT_CONFIG)
        for name in (CONFIG_FILE, LOCAL_CONFIG_FILE):
            merged = _deep_merge(merged, _read_config(self.mlops_dir / name))
        return merged

    def link_types(self) -> list[str]:
        """The configured workspace link types, validated."""
        links = self.config().get("cache", {}).get("link", DEFAULT_CONFIG["cache"]["link"])
        if isinstance(links, str):
            links = [links]
        if not isinstance(links, list) or not links:
            raise ConfigError("cache.link in .mlops/config.yaml must be a list of link types")
        for link in links:
            if link not in LINK_TYPES:
                raise ConfigError(
                    f"cache.link in .mlops/config.yaml: unknown link type {link!r} "
                    f"(valid: {', '.join(LINK_TYPES)})"
                )
        return list(links)

    def relpath(self, path: Path) -> str:
        """``path`` relative to the repository root, with forward slashes."""
        return path.relative_to(self.root).as_posix()


def find_git_root(start: Path | None = None) -> Path:
    """The top of the Git work tree containing ``start`` (default: the current folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    raise NotARepoError(f"not a Git repository (or any parent up to /): {here}")


def find_repo(start: Path | None = None) -> Repo:
    """The repository containing ``start``; it must have been set up with ``mlops init``."""
    root = find_git_root(start)
    if not (root / MLOPS_DIR).is_dir():
        raise NotARepoError(f"{root} is not set up for mlops: run `mlops init` first")
    return Repo(root)


def init_repo(start: Path | None = None) -> tuple[Repo, bool]:
    """Create ``.mlops/`` in the Git work tree; return the repo and whether anything changed."""
    root = find_git_root(start)
    repo = Repo(root)
    created = False
    if not repo.mlops_dir.is_dir():
        repo.mlops_dir.mkdir()
        created = True
    config = repo.mlops_dir / CONFIG_FILE
    if not config.exists():
        atomic_write_text(config, "cache:\n  link: [reflink, copy]\n")
        created = True
    ignore = repo.mlops_dir / ".gitignore"
    if not ignore.exists():
        atomic_write_text(ignore, _MLOPS_GITIGNORE)
        created = True
    repo.cache_dir.mkdir(exist_ok=True)
    return repo, created


def _read_config(path: Path) -> dict[str, Any]:
    where = f"{MLOPS_DIR}/{path.name}"
    try:
        with open(path, "rb") as handle:
            if path.name == LOCAL_CONFIG_FILE:
                _keep_private(handle.fileno())
            text = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        return {}
    try:
        # Remembered by content: most commands then skip importing PyYAML.
        data, lines = load_yaml_lines(text, parsed_cache_dir(path.parent.parent))
    except YamlProblem as exc:
        raise ConfigError(exc.located(where)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    _check_keys(data, where, lines)
    return data


def _keep_private(fd: int) -> None:
    """Make the local config (it holds credentials) readable by its owner only."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: read it all the same
            os.fchmod(fd, mode & 0o700)


def _check_keys(data: dict[str, Any], where: str, lines: Lines | None = None) -> None:
    """Refuse a key mlops does not know (a typo would be ignored silently otherwise)."""
    for section, body in data.items():
        if section not in CONFIG_KEYS:
            raise _unknown_key(where, lines, (section,), tuple(CONFIG_KEYS))
        known = CONFIG_KEYS[section]
        if not known or body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{_at(where, lines, (section,))}: {section!r} must be a mapping")
        for key in body:
            if key not in known:
                raise _unknown_key(where, lines, (section, key), known)


def _at(where: str, lines: Lines | None, keys: tuple[Any, ...]) -> str:
    line = line_at(lines or {}, keys)
    return f"{where}:{line}" if line else where


def _unknown_key(
    where: str, lines: Lines | None, keys: tuple[Any, ...], valid: tuple[str, ...]
) -> ConfigError:
    name = ".".join(map(str, keys))
    return ConfigError(
        f"{_at(where, lines, keys)}: unknown key {name!r}{key_hint(keys[-1], valid)}"
    )


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def config_get(repo: Repo, key: str) -> Any:
    """Read a dotted key (``cache.link``) from the merged configuration."""
    node: Any = repo.config()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key {key!r} is not set")
        node = node[part]
    return node


def parse_config_value(text: str) -> Any:
    """A value typed on the command line, read as YAML (``[hardlink, copy]``, ``3``, ``true``)."""
    try:
        return parse_yaml(text)
    except YamlProblem:
        return text


def config_set(repo: Repo, key: str, value: Any, local: bool = False) -> None:
    """Set a dotted key in ``config.yaml`` (or ``config.local.yaml``), atomically."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"invalid config key {key!r}")
    path = repo.mlops_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    data = _read_config(path)
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value
    # Validate before writing so that a typo or a credential never lands on disk.
    _check_keys(data, f"{MLOPS_DIR}/{path.name}")
    if key == "cache.link":
        for link in value if isinstance(value, list) else [value]:
            if link not in LINK_TYPES:
                raise ConfigError(
                    f"cache.link: unknown link type {link!r} (valid: {', '.join(LINK_TYPES)})"
                )
    secret = None if local else committed_secret(key, value)
    if secret:
        raise ConfigError(
            f"{secret}: it may not go into the committed {MLOPS_DIR}/{CONFIG_FILE}; "
            f"store it with `mlops config --local {key} VALUE` "
            f"(in {MLOPS_DIR}/{LOCAL_CONFIG_FILE}, which Git ignores)"
        )
    _write_config(repo, path, data)


def _write_config(repo: Repo, path: Path, data: dict[str, Any]) -> None:
    import yaml

    text = yaml.safe_dump(data, sort_keys=False)
    if path.name == LOCAL_CONFIG_FILE:
        atomic_write_bytes(path, text.encode(), 0o600, repo.scratch_dir)  # it holds credentials
    else:
        atomic_write_text(path, text, repo.scratch_dir)
    # Remembered now: the next command reads it without parsing.
    load_yaml_lines(text.encode(), parsed_cache_dir(path.parent.parent))


def config_unset(repo: Repo, key: str, local: bool = False) -> None:
    """Remove a dotted key from ``config.yaml`` (or the local file)."""
    path = repo.mlops_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    data = _read_config(path)
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"config key {key!r} is not set in {path.name}")
    del node[parts[-1]]
    _write_config(repo, path, data)


@contextlib.contextmanager
def file_lock(path: Path, wait: float, busy: str, note: str = "") -> Iterator[None]:
    """Hold an exclusive lock on the file ``path``; wait up to ``wait`` seconds for it,
    then fail with ``busy`` and what the holder wrote of itself.

    An OS-level ``flock`` is released by the kernel when the process dies, so a
    killed command never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise LockedError(
                        busy + (f" ({holder})" if holder else "") + "; wait for it to finish"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} {note}".strip().encode(), 0)
        yield
    finally:
        os.close(fd)


def repo_lock(
    repo: Repo, wait: float = 0.0, purpose: str = ""
) -> contextlib.AbstractContextManager[None]:
    """Hold the repository's exclusive lock (every command that writes the workspace or
    the cache takes it); wait up to ``wait`` seconds for it."""
    return file_lock(
        repo.mlops_dir / "lock",
        wait,
        "another mlops command is running in this repository",
        purpose,
    )
