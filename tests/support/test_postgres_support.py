"""The throwaway PostgreSQL helper: a real server starts, and each created database is isolated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.support.postgres import DATABASE, create_database, running_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("select version()")).scalar_one())
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_session_database_is_reachable(server_url: str) -> None:
    parsed = make_url(server_url)
    assert parsed.drivername == "postgresql+psycopg"
    assert parsed.database == DATABASE
    assert _version(server_url).startswith("PostgreSQL ")


def test_created_databases_are_isolated(server_url: str) -> None:
    first = create_database(server_url, "t_" + uuid.uuid4().hex[:12])
    second = create_database(server_url, "t_" + uuid.uuid4().hex[:12])
    assert make_url(first).database != make_url(second).database
    assert _version(first).startswith("PostgreSQL ")
    assert _version(second).startswith("PostgreSQL ")

    engine = create_engine(first)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table only_here (id integer primary key)"))
            conn.execute(text("insert into only_here values (1)"))
    finally:
        engine.dispose()

    assert "only_here" in _tables(first)
    assert "only_here" not in _tables(second)
