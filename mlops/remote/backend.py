"""Where a remote's objects live: a local folder (plain os calls) or any fsspec filesystem.

Both back ends offer the same few key-addressed operations; keys are paths
relative to the remote's root (``ab/cdef...`` for objects, ``packs/...``).

Atomicity: nothing partial is ever visible under an object's key. A local folder
receives each upload under a temporary name in its ``tmp/<host>/`` folder, then a
rename; a push sweeps the temporaries a killed push of the same machine left there
(a process id tells nothing on another machine). Any other fsspec filesystem that
is not an object store receives it under a dot-name in the same folder. On object stores (S3, GCS,
Azure) a PUT, and a multipart upload, become visible only once complete, so they
are written in place: a copy from a temporary key would double every transfer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mlops.core.fsutil import make_read_only, replace_from, sweep_temporaries, temp_path
from mlops.core.repo import Repo
from mlops.core.secrets import mask_url
from mlops.errors import RemoteError
from mlops.remote.config import RemoteSpec, scrub, split_url
from mlops.storage.links import Linker

T = TypeVar("T")

# Which extra installs the fsspec back end for a URL scheme.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "ssh": "ssh",
    "sftp": "ssh",
}
# Object stores: an upload is atomic, and the first part of a path is a bucket.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})
AZURE = frozenset({"az", "abfs", "abfss"})
SSH = frozenset({"ssh", "sftp"})
# Options mlops reads itself rather than passing to fsspec.
MLOPS_OPTIONS = frozenset({"pack", "timeout", "connect_timeout", "read_timeout", "retries"})
# Seconds to wait for a remote's server to answer a connection (the `timeout` option).
DEFAULT_TIMEOUT = 5.0
# What to set, per kind of remote, when the credentials are missing or refused.
CREDENTIAL_OPTIONS = {
    "s3": "access_key_id and secret_access_key (or profile)",
    "gs": "token (a service account's JSON key file)",
    "az": "account_key, sas_token or connection_string",
    "ssh": "password, or client_keys (a list of private key files)",
}
# Exception class names (anywhere in the MRO) that mean the network failed.
_NETWORK_ERRORS = frozenset(
    {
        "ConnectionError",
        "TimeoutError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "HTTPClientError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "FSTimeoutError",
        "IncompleteRead",
        "ResponseStreamingError",
    }
)
_CREDENTIAL_ERRORS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "ClientAuthenticationError",
        "PermissionDenied",  # asyncssh: no key or password was accepted
    }
)


class Backend:
    """Key-addressed storage of one remote; subclasses implement the primitives."""

    # Object names one listing request returns: decides listing against asking per object.
    page_size = 1000

    def __init__(self, spec: RemoteSpec, display: str) -> None:
        self.spec = spec
        self.display = display  # what error messages call the remote's location

    def where(self) -> str:
        return f"remote {self.spec.name!r} ({mask_url(self.spec.url)})"

    def credentials_hint(self) -> str:
        """Which options hold this kind of remote's credentials, and how to set them."""
        protocol = split_url(self.spec.url)[0] or ""
        kind = "s3" if protocol.startswith("s3") else "az" if protocol in AZURE else protocol
        kind = "ssh" if protocol in SSH else "gs" if protocol in ("gs", "gcs") else kind
        options = CREDENTIAL_OPTIONS.get(kind, "the back end's credential options")
        return f"set {options} with `mlops remote modify {self.spec.name} KEY VALUE --local`"

    def error(self, exc: BaseException, action: str) -> RemoteError:
        """A one-line error for a failed operation, scrubbed of every secret."""
        if isinstance(exc, RemoteError):
            return exc
        names = {cls.__name__ for cls in type(exc).__mro__}
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "NoCredentialsError" in names:
            reason = f"no credentials found while {action}; {self.credentials_hint()}"
        elif "HostKeyNotVerifiable" in names:
            reason = (
                f"the SSH host key of {self.display} is not in known_hosts ({detail}); "
                "after checking its fingerprint with the server's owner, add it "
                "(`ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts`) or name another file "
                f"with `mlops remote modify {self.spec.name} known_hosts PATH`"
            )
        elif isinstance(exc, PermissionError) or names & _CREDENTIAL_ERRORS:
            reason = (
                f"access denied while {action} ({detail}); check the remote's credentials: "
                f"{self.credentials_hint()}"
            )
        elif names & _NETWORK_ERRORS:
            reason = f"cannot connect to {self.display} while {action} ({type(exc).__name__})"
        elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            reason = f"no space left on the remote while {action}"
        else:
            reason = f"{action} failed: {type(exc).__name__}: {detail}"
        return RemoteError(scrub(f"{self.where()}: {reason}", self.spec.secrets))

    def call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args)``, with every failure but a missing key turned into a RemoteError."""
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self.error(exc, action) from None

    # Primitives -------------------------------------------------------------

    def open(self, create: bool) -> list[str]:
        """Check the remote is usable (creating a missing folder if ``create``); list packs/."""
        raise NotImplementedError

    def list_names(self, folder: str) -> list[str]:
        """Names in a folder (``ab``, ``packs``); empty when it does not exist."""
        raise NotImplementedError

    def list_all(self) -> set[str]:
        """The ids of every loose object on the remote."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes of ``key`` (``[start, end)`` when given); FileNotFoundError when missing."""
        raise NotImplementedError

    def download(self, key: str, dst: str) -> None:
        """Copy ``key`` to the local file ``dst``; FileNotFoundError when missing."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` atomically."""
        raise NotImplementedError

    def upload(self, src: str, key: str) -> None:
        """Store the local file ``src`` at ``key`` atomically."""
        raise NotImplementedError


class LocalBackend(Backend):
    """A folder on a local or mounted filesystem, through plain os calls.

    Objects are immutable and read-only on both sides, so a local remote may share
    bytes with the cache the way the workspace does: by reflink, or by hardlink
    when ``cache.link`` allows hardlinks. Otherwise, and across filesystems, files
    are copied (in the kernel).
    """

    # Listing a folder costs about as much per 50 names as one stat call.
    page_size = 50

    def __init__(self, spec: RemoteSpec, root: Path, link_types: Sequence[str] = ()) -> None:
        super().__init__(spec, str(root))
        self.root = root
        self.linker = Linker([k for k in link_types if k in ("reflink", "hardlink")] + ["copy"])
        # One folder per machine, since only there do the process ids in the names mean
        # anything; on the remote's file system, so that the rename is atomic.
        host = os.uname().nodename.replace(os.sep, "_").lstrip(".") or "localhost"
        self._scratch = os.path.join(root, "tmp", host)
        self._scratch_made = False

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def open(self, create: bool) -> list[str]:
        if not self.root.is_dir():
            if not create:
                raise RemoteError(f"{self.where()}: the folder {self.root} does not exist")
            self.call("creating the remote folder", self.root.mkdir, parents=True, exist_ok=True)
        if create:  # about to write: first sweep what killed writers left
            sweep_temporaries(self._scratch)
        return self.list_names("packs")

    def list_names(self, folder: str) -> list[str]:
        try:
            names = self.call("listing objects", os.listdir, self._path(folder))
        except FileNotFoundError:
            return []
        return [n for n in names if not n.startswith(".")]

    def list_all(self) -> set[str]:
        found: set[str] = set()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as entries:
            for entry in entries:
                if len(entry.name) == 2 and entry.is_dir():
                    found.update(entry.name + name for name in self.list_names(entry.name))
        return found

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.call(f"reading {key}", _read_range, self._path(key), start, end)

    def download(self, key: str, dst: str) -> None:
        self.call(f"reading {key}", self.linker.place, self._path(key), dst)

    def write(self, key: str, data: bytes) -> None:
        def put(tmp: str) -> None:
            with open(tmp, "xb") as handle:
                handle.write(data)

        self._publish(key, put)

    def upload(self, src: str, key: str) -> None:
        self._publish(key, partial(self.linker.place, src))

    def _publish(self, key: str, fill: Callable[[str], object]) -> None:
        target = self._path(key)
        if not self._scratch_made:
            self.call("creating the remote folder", os.makedirs, self._scratch, exist_ok=True)
            self._scratch_made = True
        tmp = temp_path(self._scratch)
        try:
            fill(tmp)
            make_read_only(tmp)  # objects are immutable; read-only guards against edits
            try:
                replace_from(tmp, target)
            except FileNotFoundError:  # the object's folder is new
                os.makedirs(os.path.dirname(target), exist_ok=True)
                replace_from(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, Exception):
                raise self.error(exc, f"writing {key}") from None
            raise


def _read_range(path: str, start: int | None, end: int | None) -> bytes:
    with open(path, "rb") as handle:
        if start is None:
            return handle.read()
        handle.seek(start)
        return handle.read((end if end is not None else 1 << 62) - start)


class FsspecBackend(Backend):
    """Any fsspec filesystem (S3, GCS, Azure, SSH, ...)."""

    def __init__(self, spec: RemoteSpec, root: str, protocol: str) -> None:
        endpoint = spec.options.get("endpoint_url")
        super().__init__(spec, str(endpoint) if endpoint else mask_url(spec.url))
        self.fs: Any = None  # set by open_backend, whose errors this object words
        self.root = root.rstrip("/")
        self.protocol = protocol
        self.atomic = protocol in OBJECT_STORES
        self.page_size = 1000 if self.atomic else 50

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def open(self, create: bool) -> list[str]:
        try:
            names = self.call("listing packs", self.fs.ls, self._path("packs"), detail=False)
            return [os.path.basename(n.rstrip("/")) for n in names]
        except FileNotFoundError:
            pass
        if self.atomic:
            bucket = self.root.split("/", 1)[0]
            word = "container" if self.protocol in AZURE else "bucket"
            if not self.call(f"checking the {word}", self.fs.exists, bucket):
                raise RemoteError(f"{self.where()}: the {word} {bucket!r} does not exist") from None
        elif not self.call("checking the folder", self.fs.exists, self.root):
            if not create:
                raise RemoteError(f"{self.where()}: the folder {self.root} does not exist")
            self.call("creating the remote folder", self.fs.makedirs, self.root, exist_ok=True)
        return []

    def list_names(self, folder: str) -> list[str]:
        try:
            names = self.call("listing objects", self.fs.ls, self._path(folder), detail=False)
        except FileNotFoundError:
            return []
        found = (os.path.basename(n.rstrip("/")) for n in names)
        return [n for n in found if not n.startswith(".")]

    def list_all(self) -> set[str]:
        try:
            keys = self.call("listing objects", self.fs.find, self.root)
        except FileNotFoundError:
            return set()
        found = set()
        for key in keys:
            prefix, _, name = key[len(self.root) + 1 :].partition("/")
            if len(prefix) == 2 and name and "/" not in name and not name.startswith("."):
                found.add(prefix + name)
        return found

    def exists(self, key: str) -> bool:
        return bool(self.call("checking objects", self.fs.exists, self._path(key)))

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        if start is not None and not self.atomic:
            # Not every file system honours a range in cat_file (sshfs returns the whole
            # file): read the range from an open file instead.
            return self.call(f"reading {key}", self._read_range, self._path(key), start, end)
        data = self.call(f"reading {key}", self.fs.cat_file, self._path(key), start=start, end=end)
        return bytes(data)

    def _read_range(self, path: str, start: int, end: int | None) -> bytes:
        with self.fs.open(path, "rb") as handle:
            handle.seek(start)
            return bytes(handle.read() if end is None else handle.read(end - start))

    def download(self, key: str, dst: str) -> None:
        self.call(f"downloading {key}", self.fs.get_file, self._path(key), dst)

    def write(self, key: str, data: bytes) -> None:
        with self._target(key) as path:
            self._no_missing(f"writing {key}", self.fs.pipe_file, path, data)

    def upload(self, src: str, key: str) -> None:
        with self._target(key) as path:
            self._no_missing(f"uploading {key}", self.fs.put_file, src, path)

    def _no_missing(self, action: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.call(action, fn, *args)
        except FileNotFoundError as exc:  # the bucket or folder went away
            raise self.error(exc, action) from None

    @contextlib.contextmanager
    def _target(self, key: str) -> Iterator[str]:
        """The path to write ``key`` to: in place on object stores, else a temporary + move."""
        path = self._path(key)
        if self.atomic:
            yield path
            return
        folder, name = path.rsplit("/", 1)
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        self.call("creating a folder", self.fs.makedirs, folder, exist_ok=True)
        try:
            yield tmp
            self.call(f"moving {key} into place", self.fs.mv, tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise


def open_backend(spec: RemoteSpec, repo: Repo) -> Backend:
    """The back end for a remote's URL; a missing fsspec package names the extra to install."""
    protocol, path = split_url(spec.url)
    if protocol in (None, "file", "local"):
        return LocalBackend(spec, (repo.root / path).resolve(), repo.link_types())
    import fsspec

    try:
        fs_class = fsspec.get_filesystem_class(protocol)
    except ImportError:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'mlops[{extra}]'" if extra else "install its fsspec package"
        raise RemoteError(
            f"remote {spec.name!r}: the {protocol}:// back end is not installed; {hint}"
        ) from None
    except ValueError:
        raise RemoteError(
            f"remote {spec.name!r}: unknown URL scheme {protocol!r} in {mask_url(spec.url)}"
        ) from None
    # The URL's parts (ssh://user@host:port/path) first; options set with `remote modify` win.
    options = {**fs_class._get_kwargs_from_urls(spec.url), **_fs_options(spec, protocol)}
    backend = FsspecBackend(spec, fs_class._strip_protocol(spec.url), protocol)
    if protocol in AZURE and not (options.get("connection_string") or options.get("account_name")):
        raise RemoteError(
            f"{backend.where()}: no Azure storage account or credentials: set account_name "
            f"(not secret), and {backend.credentials_hint().removeprefix('set ')}"
        )
    address = server_address(protocol, options)
    if address is not None:
        backend.display = address[2]
        probe(backend, address[:2], timeout_of(spec))
    backend.fs = backend.call("connecting", fs_class, **options)
    return backend


def timeout_of(spec: RemoteSpec) -> float:
    """The remote's ``timeout`` option (seconds to wait for its server to answer)."""
    raw = spec.options.get("timeout", spec.options.get("connect_timeout", DEFAULT_TIMEOUT))
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise RemoteError(
            f"remote {spec.name!r}: timeout must be a number of seconds above 0, not {raw!r}"
        )
    return value


def server_address(protocol: str, options: dict[str, Any]) -> tuple[str, int, str] | None:
    """Where the remote's server listens, when mlops can tell (host, port, and how to
    show it): the SSH host, the Azure blob endpoint, a custom S3 endpoint. None leaves
    reaching it to the back end."""
    from urllib.parse import urlsplit

    if protocol in SSH and options.get("host"):
        host, port = str(options["host"]), int(options.get("port") or 22)
        return host, port, f"{host}:{port}"
    url = None
    if protocol in ("s3", "s3a"):
        url = options.get("endpoint_url")
    elif protocol in AZURE:
        if options.get("connection_string"):
            pairs = [p.split("=", 1) for p in str(options["connection_string"]).split(";")]
            url = dict(p for p in pairs if len(p) == 2).get("BlobEndpoint")
        elif options.get("account_host"):
            url = f"https://{options['account_host']}"
    if not url:
        return None
    parts = urlsplit(str(url))
    if not parts.hostname:
        return None
    try:
        given = parts.port
    except ValueError:
        return None
    shown = mask_url(f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/"))
    return parts.hostname, given or (443 if parts.scheme == "https" else 80), shown


def probe(backend: Backend, address: tuple[str, int], timeout: float) -> None:
    """Fail in ``timeout`` seconds, in one line, when nothing answers at ``address``:
    back ends retry a refused or silent server for a minute or more before they say so."""
    import socket

    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RemoteError(
            f"{backend.where()}: cannot connect to {backend.display} within "
            f"{timeout:g} s ({why}); check the URL, or give it longer with "
            f"`mlops remote modify {backend.spec.name} timeout SECONDS`"
        ) from None


def _fs_options(spec: RemoteSpec, protocol: str) -> dict[str, Any]:
    """fsspec keyword arguments: the remote's options, with short timeouts."""
    options = {k: v for k, v in spec.options.items() if k not in MLOPS_OPTIONS}
    options["skip_instance_cache"] = True
    timeout = timeout_of(spec)
    if protocol in SSH:
        options.setdefault("timeout", timeout)  # sshfs: limits the connection's set-up
        options.setdefault("connect_timeout", timeout)  # asyncssh: the whole handshake
        # The server proves who it is against known_hosts, as OpenSSH does: sshfs alone
        # would accept any host key (a machine in the middle could read every object).
        # () is asyncssh's own default: ~/.ssh/known_hosts, or none known. "none" opts out.
        known = options.get("known_hosts", ())
        options["known_hosts"] = None if str(known).lower() == "none" else known
    if protocol in AZURE:
        options.setdefault("connection_timeout", timeout)
        options.setdefault("read_timeout", spec.options.get("read_timeout", 60))
    if protocol not in ("s3", "s3a"):
        return options
    for alias, name in (("access_key_id", "key"), ("secret_access_key", "secret"),
                        ("session_token", "token")):  # fmt: skip
        if alias in options:
            options[name] = options.pop(alias)
    if "region" in options:
        options.setdefault("client_kwargs", {})["region_name"] = options.pop("region")
    options.setdefault("use_listings_cache", False)
    # An unreachable endpoint must fail in seconds: short connect timeout, few attempts.
    config = {
        "connect_timeout": timeout,
        "read_timeout": spec.options.get("read_timeout", 60),
        "retries": {"max_attempts": int(spec.options.get("retries", 2)), "mode": "standard"},
    }
    options["config_kwargs"] = {**config, **(options.get("config_kwargs") or {})}
    return options
