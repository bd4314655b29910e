"""Checks that run before any trial: can each store, server, package and folder a command
needs be used? Each takes seconds at most and fails with one line (`PreflightError`).

Without them, MLflow retries an unreachable server for minutes, Ray waits for a cluster
that is not there, a missing database driver or a file where a folder goes surfaces as a
traceback, and an output folder is found unwritable only after the trials. The commands
call these before they open anything (cli.py, tune.py); an executor that needs a cluster
exposes a `preflight()` doing the same for its own address (executor/ray.py).

Reusable pieces: `check_reachable` (a TCP connection with a timeout), `require_module`,
`check_output_dir`, `check_free_space`, `check_database_url` (any SQLAlchemy URL: MLflow
database stores, Optuna storages), `check_tracking_uri` (every MLflow store kind) and
`check_ray`. Passwords in URLs are never printed (`shown_url`).
"""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Seconds to wait for a server to accept a connection.
CONNECT_TIMEOUT = 5.0
# Less free space than this under a store or output folder: the command would fail midway.
MIN_FREE_BYTES = 1 << 20
# Default ports of SQLAlchemy's server databases (MLflow stores, Optuna storages).
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}
# pip packages of the DB-API modules SQLAlchemy's dialects import.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
# Tracking stores MLflow registers itself (mlflow/tracking/_tracking_service/utils.py);
# plugins add theirs under the `mlflow.tracking_store` entry point.
MLFLOW_DATABASES = ("postgresql", "mysql", "sqlite", "mssql")
MLFLOW_REMOTE = ("http", "https", "databricks", "databricks-uc", "uc")
SQLITE_HEADER = b"SQLite format 3\x00"


class PreflightError(ValueError):
    """A store, server, package or folder a command needs cannot be used; `str()` is one
    line naming it. `exit_code`: 2 (bad input, the default) or 1 (no space left)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ------------------------------------------------------------------------------- pieces


def shown_url(url: str) -> str:
    """`url` with any password replaced by `***` (URLs go into error lines and logs)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer within the timeout"
    return exc.strerror or type(exc).__name__


def connect_error(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why `host:port` accepts no TCP connection within `timeout` seconds (None if it does)."""
    try:
        with socket.create_connection((host, port), timeout):
            return None
    except OSError as exc:
        return _reason(exc)


def check_reachable(host: str, port: int, what: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """`host:port` accepts a TCP connection, else PreflightError "`what`: HOST:PORT is
    unreachable (reason)"."""
    reason = connect_error(host, port, timeout)
    if reason is not None:
        raise PreflightError(f"{what}: {host}:{port} is unreachable ({reason})")


def require_module(module: str, what: str, install: str) -> None:
    """`module` imports, else PreflightError "`what`: ... is not installed here (`install`)"."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise PreflightError(f"{what}: {install}") from None


def free_bytes(folder: Path) -> int:
    """Bytes this process may still write on `folder`'s filesystem (root may use the
    blocks reserved for it)."""
    st = os.statvfs(folder)
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return int(blocks * st.f_frsize)


def check_free_space(folder: Path, what: str, minimum: int = MIN_FREE_BYTES) -> None:
    """At least `minimum` bytes free under `folder`, else PreflightError (exit code 1)."""
    free = free_bytes(folder)
    if free < minimum:
        raise PreflightError(
            f"no space left on device for {what} ({free:,} bytes free in {folder}); free "
            "space there and re-run",
            exit_code=1,
        )


def _existing_ancestor(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (what creating `path` writes into)."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output_dir(path: str | Path, option: str) -> None:
    """`path` can be a folder this command writes into: it is one, or can be created in
    a writable folder with free space. PreflightError names the option and the path."""
    where = f"{option} {path}"
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise PreflightError(f"{where}: is a file, not a directory")
    folder = _existing_ancestor(target)
    if not folder.is_dir():
        raise PreflightError(f"{where}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PreflightError(f"{where}: directory {folder} is not writable")
    check_free_space(folder, where)


# ----------------------------------------------------------------------------- databases


def _check_sqlite_file(db: Path, what: str, store: str | None = None) -> None:
    """An SQLite database `db` can be opened for writing (or created): its folder exists
    and is writable with free space (`store` names it when there is none); an existing
    file is a database, not a folder or a FIFO (opening which would hang)."""
    folder = db.parent
    if db.is_dir():
        raise PreflightError(f"{what}: {db} is a directory, not a database file")
    if not folder.is_dir():
        raise PreflightError(f"{what}: directory {folder} does not exist")
    if db.exists():
        if not db.is_file():
            raise PreflightError(f"{what}: {db} is not a regular file")
        try:
            with open(db, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise PreflightError(f"{what}: {db} cannot be read ({_reason(exc)})") from None
        if header and header != SQLITE_HEADER:  # SQLite takes an empty file as a new database
            raise PreflightError(f"{what}: {db} is not an SQLite database")
        if not os.access(db, os.W_OK):
            raise PreflightError(f"{what}: {db} is not writable")
    # SQLite writes its journal beside the database
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PreflightError(f"{what}: directory {folder} is not writable")
    check_free_space(folder, store or what)


def check_database_url(url: str, what: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A SQLAlchemy database URL (an MLflow database store, an Optuna storage) can be used:
    an SQLite file as `_check_sqlite_file`; a server database's dialect and DB-API driver
    import, and its server accepts connections."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from nasrepro.tracking import sqlite_path

    shown = shown_url(url)
    where = f"{what} {shown}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise PreflightError(f"{where}: not a database URL (e.g. sqlite:///PATH)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = sqlite_path(url)
        if db is not None:
            _check_sqlite_file(db, where)
        return
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise PreflightError(f"{where}: SQLAlchemy has no dialect {parsed.drivername!r}") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or dialect.driver).split(".")[0]
        package = DRIVER_PACKAGES.get(module, module)
        raise PreflightError(
            f"{where}: its database driver {module!r} is not installed (pip install {package})"
        ) from None
    if parsed.host:
        port = parsed.port or DATABASE_PORTS.get(backend)
        if port is not None:
            check_reachable(parsed.host, port, f"{where}: database server", timeout)


# ---------------------------------------------------------------------------- tracking


def _mlflow_plugin_schemes() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group="mlflow.tracking_store")}


def _file_store_allowed() -> bool:
    """Whether this MLflow opens a file store: from 3.x it refuses them unless
    MLFLOW_ALLOW_FILE_STORE is true (mlflow/store/tracking/file_store.py)."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow without the switch opens file stores
        return True
    try:
        return bool(MLFLOW_ALLOW_FILE_STORE.get())
    except ValueError:  # a value MLflow cannot read as a boolean
        return False


def check_tracking_uri(uri: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in seconds, with one line, if MLflow cannot track to `uri`: an HTTP server that
    accepts no connection (MLflow retries for minutes); a database store whose driver is
    missing or whose server is down; an SQLite file that is not a database, or whose
    folder is missing, read-only or full; a file store that is a file or that this MLflow
    refuses; a scheme MLflow has no store for."""
    from nasrepro.tracking import sqlite_path

    shown = shown_url(uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    base = scheme.split("+", 1)[0]
    if scheme in ("http", "https"):
        port = parts.port or (443 if scheme == "https" else 80)
        reason = connect_error(parts.hostname or "localhost", port, timeout)
        if reason is not None:
            raise PreflightError(
                f"tracking server {shown} is unreachable ({reason}); start it or pass "
                "another --tracking-uri / MLFLOW_TRACKING_URI"
            )
        return
    if base == "sqlite":
        db = sqlite_path(uri)
        if db is not None:
            _check_sqlite_file(db, f"tracking store {shown}", f"the MLflow store {shown}")
        return
    if base in MLFLOW_DATABASES:
        check_database_url(uri, "tracking store", timeout)
        return
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):  # a drive letter
        _check_file_store(uri, parts.path if scheme == "file" else uri)
        return
    if scheme in MLFLOW_REMOTE or scheme in _mlflow_plugin_schemes():
        return  # credentials and workspaces are MLflow's to check
    raise PreflightError(
        f"tracking URI {shown}: MLflow has no tracking store for scheme {scheme!r} (use "
        "sqlite:///PATH, http(s)://HOST:PORT, postgresql://, mysql:// or mssql://)"
    )


def _check_file_store(uri: str, path: str) -> None:
    where = f"tracking store {uri}"
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise PreflightError(f"{where}: {folder} is a file, not a directory")
    existing = _existing_ancestor(folder)  # a file store creates its folder
    if not existing.is_dir():
        raise PreflightError(f"{where}: directory {existing} does not exist")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PreflightError(f"{where}: directory {existing} is not writable")
    if not _file_store_allowed():
        raise PreflightError(
            f"{where}: MLflow refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true; use "
            f"sqlite:///{folder / 'mlflow.db'}"
        )
    check_free_space(existing, f"the MLflow store {uri}")


# --------------------------------------------------------------------------------- Ray

RAY_CLIENT_PORT = 10001  # `ray://HOST` without a port (Ray Client's default)


def _auto_ray_address() -> str:
    """The cluster `auto` means, found as Ray finds it (RAY_ADDRESS, the last `ray start`,
    a running GCS); PreflightError when there is none."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # another Ray layout: leave the search to ray.init
        return "auto"
    try:
        return str(canonicalize_bootstrap_address_or_die("auto"))
    except Exception as exc:  # noqa: BLE001  (Ray raises ConnectionError, ValueError ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PreflightError(
            f"--ray-address auto: no running Ray cluster found ({first[:200]}); start one "
            "with `ray start --head`"
        ) from None


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT` or `ray://HOST[:PORT]`; None if it is neither."""
    if address.startswith("ray://"):
        rest, default = address[len("ray://") :], RAY_CLIENT_PORT
    elif "://" in address:
        return None
    else:
        rest, default = address, None
    try:
        parts = urlsplit(f"//{rest}")
        host, port = parts.hostname, parts.port or default
    except ValueError:
        return None
    return (host, port) if host and port else None


def check_ray(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Ray imports and, for a cluster address (given, or RAY_ADDRESS as ray.init reads
    it), the cluster accepts connections: ray.init waits minutes for one that does not.
    No address (or `local`) starts a local instance: only the import is checked."""
    install = "Ray is not installed here (pip install 'nasrepro[ray]')"
    require_module("ray", "--executor ray", install)
    given = address
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "local"):
        return
    option = "--ray-address" if given else "RAY_ADDRESS"
    if address == "auto":
        address = _auto_ray_address()
        if address == "auto":
            return
    target = _host_port(address)
    if target is None:
        raise PreflightError(
            f"{option} {address}: expected HOST:PORT, ray://HOST[:PORT], auto or local"
        )
    host, port = target
    reason = connect_error(host, port, timeout)
    if reason is not None:
        raise PreflightError(
            f"{option} {address}: no Ray cluster answers at {host}:{port} ({reason}); start "
            "one with `ray start --head` or pass another address"
        )

