"""A throwaway, real PostgreSQL server for the test session.

:func:`running_postgres` initialises a fresh cluster in a temporary directory, starts it on a free TCP port
on 127.0.0.1 (tuned for speed: no fsync, no synchronous commit, no full page writes), creates the database
``llmops_test`` and yields its SQLAlchemy URL (``postgresql+psycopg://llmops@127.0.0.1:PORT/llmops_test``).
On exit, also after an exception, the server is stopped (``pg_ctl stop -m immediate``) and the directory
removed. :func:`create_database` makes another, empty database on the same server (one per test or per
pytest-xdist worker) and returns its URL.

The binaries come from ``/usr/lib/postgresql/<version>/bin`` (highest version first; installed by
``scripts/system-deps.sh``), else from ``pg_ctl`` found on ``PATH``. PostgreSQL refuses to run as root: as
root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` system user through ``runuser``.

Set ``LLMOPS_TEST_POSTGRES_URL`` to use an existing server instead: :func:`running_postgres` then yields that
URL unchanged (its role needs the ``CREATEDB`` privilege for :func:`create_database`).
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ENV_URL = "LLMOPS_TEST_POSTGRES_URL"
SUPERUSER = "llmops"
DATABASE = "llmops_test"
SERVER_USER = "postgres"
STARTUP_TIMEOUT = 30.0
START_ATTEMPTS = 3
DEBIAN_ROOT = Path("/usr/lib/postgresql")
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server could not be found, initialised or started."""


# --- locating the binaries -------------------------------------------------------------------------------


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in REQUIRED_BINARIES)


def _version_key(bindir: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` -> ``(15,)``; non-numeric versions sort first."""
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: Debian's highest version, else PATH."""
    debian = sorted((d for d in DEBIAN_ROOT.glob("*/bin") if _has_binaries(d)), key=_version_key, reverse=True)
    if debian:
        return debian[0]
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        bindir = Path(on_path).resolve().parent  # follows symlinks such as /usr/local/bin/pg_ctl
        if _has_binaries(bindir):
            return bindir
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in {DEBIAN_ROOT}/*/bin "
        "or next to pg_ctl on PATH; run scripts/system-deps.sh (or set " + ENV_URL + ")"
    )


# --- running as the server user --------------------------------------------------------------------------


def _ensure_server_user() -> pwd.struct_passwd:
    """The ``postgres`` system user (created by the Debian package; created here when missing)."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _is_root() -> bool:
    return os.geteuid() == 0


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _make_base_dir() -> Path:
    """A fresh temporary directory the server user owns (and can reach: as root, under a traversable path)."""
    if not _is_root():
        return Path(tempfile.mkdtemp(prefix="llmops-pg-"))
    parent = Path(tempfile.gettempdir())
    if not _world_traversable(parent):
        parent = Path("/tmp")
    base = Path(tempfile.mkdtemp(prefix="llmops-pg-", dir=parent))
    base.chmod(0o755)
    user = _ensure_server_user()
    os.chown(base, user.pw_uid, user.pw_gid)
    return base


# --- the cluster -----------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``base``: ``data/`` (PGDATA), ``sockets/`` (unix socket), ``server.log``."""

    bindir: Path
    base: Path
    port: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sockets(self) -> Path:
        return self.base / "sockets"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary (as the server user when we are root), output captured, never raising."""
        command: list[str] = [str(self.bindir / tool), *args]
        if _is_root():
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, cwd=self.base, capture_output=True, text=True, check=False)

    def initdb(self) -> None:
        result = self.run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale=C"
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        self.sockets.mkdir()
        if _is_root():
            user = _ensure_server_user()
            os.chown(self.sockets, user.pw_uid, user.pw_gid)

    def _server_options(self) -> str:
        settings = " ".join(f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        return f"-h 127.0.0.1 -p {self.port} -k {shlex.quote(str(self.sockets))} {settings}"

    def start(self) -> None:
        """Start on a free port (a new one if another process grabbed it meanwhile) and wait until ready."""
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            deadline = time.monotonic() + STARTUP_TIMEOUT
            result = self.run(
                "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-s",
                "-w", "-t", str(int(STARTUP_TIMEOUT)), "-o", self._server_options(),
            )  # fmt: skip
            if result.returncode == 0:
                wait_until_ready(self, max(deadline - time.monotonic(), 1.0))
                return
            if "already in use" not in self.log_tail() or attempt == START_ATTEMPTS:
                raise PostgresUnavailable(
                    f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()}\n"
                    f"server log ({self.log}):\n{self.log_tail()}"
                )

    def stop(self) -> None:
        """Stop at once (no checkpoint: the data is thrown away); a server that is not running is fine."""
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-s", "-w")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _connect(url: str, *, connect_timeout: int = 5) -> psycopg.Connection[tuple[object, ...]]:
    """A psycopg autocommit connection to the ``postgres`` database of the server behind a SQLAlchemy URL."""
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname="postgres",
        connect_timeout=connect_timeout,
        autocommit=True,
    )


def wait_until_ready(cluster: Cluster, timeout: float) -> None:
    """Poll until the server accepts TCP connections; raise with the server log tail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _connect(cluster.url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise PostgresUnavailable(
                    f"PostgreSQL on 127.0.0.1:{cluster.port} not ready after {timeout:.0f} s: {exc}\n"
                    f"server log ({cluster.log}):\n{cluster.log_tail()}"
                ) from exc
        time.sleep(0.05)


# --- public API ------------------------------------------------------------------------------------------


def create_database(url: str, name: str) -> str:
    """Create the empty database ``name`` on the server behind ``url``; return the URL pointing at it."""
    with _connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def temporary_cluster() -> Iterator[Cluster]:
    """A started cluster in a fresh temporary directory; stopped and removed on exit."""
    bindir = find_bindir()
    base = _make_base_dir()
    cluster = Cluster(bindir=bindir, base=base)
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield the URL of database ``llmops_test`` on a throwaway server (or ``$LLMOPS_TEST_POSTGRES_URL``)."""
    external = os.environ.get(ENV_URL)
    if external:
        yield external
        return
    with temporary_cluster() as cluster:
        create_database(cluster.url, DATABASE)
        yield cluster.url


__all__ = [
    "DATABASE",
    "ENV_URL",
    "Cluster",
    "PostgresUnavailable",
    "create_database",
    "find_bindir",
    "free_port",
    "running_postgres",
    "temporary_cluster",
]
