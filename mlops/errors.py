"""Errors the library raises; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class MlopsError(Exception):
    """A failure the user must act on. ``str(error)`` is the one-line message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotARepoError(MlopsError):
    """Not inside a Git work tree, or ``.mlops/`` is missing."""


class InputError(MlopsError):
    """A path, argument or file given by the user is not acceptable."""


class ConfigError(MlopsError):
    """A configuration or declaration file is invalid."""


class CacheError(MlopsError):
    """An object is missing from the cache, corrupt, or cannot be written."""


class WorkspaceConflict(MlopsError):
    """A workspace file would be lost; ``--force`` is needed."""


class RemoteError(MlopsError):
    """A remote cannot be reached, is misconfigured, or holds bad data."""


class PipelineError(MlopsError):
    """A pipeline declaration is invalid or a stage failed."""


class TableError(InputError):
    """A data file cannot be read as a table, or lacks a column asked for.

    ``key`` names what is at fault for a caller that points into a declaration: the
    YAML key that named the file, or the column.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class CheckError(MlopsError):
    """A check suite is invalid, or a check could not be evaluated."""


class RegistryError(MlopsError):
    """A model, version or alias is unknown, or a promotion is refused."""


class MonitorError(MlopsError):
    """Monitoring cannot score a batch."""


class LockedError(MlopsError):
    """Another mlops process holds the repository lock."""


class RequestError(MlopsError):
    """A request to the model server is malformed or does not fit the model: an HTTP 4xx.

    ``column`` names the column at fault, when one is.
    """

    def __init__(self, message: str, status: int = 400, column: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.column = column


class ServeError(MlopsError):
    """The model server cannot start: no such model or alias, a missing extra, a bad option."""
