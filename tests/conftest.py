"""Shared fixtures: factories for the exchange simulator, a real Prefect server, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures.simulator", "tests.fixtures.prefect", "tests.fixtures.ducklake"]

POSTGRES_URL = os.environ.get("TRADEFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_engine(**engine_kwargs: Any) -> Any:
    """An engine on the PostgreSQL server at 127.0.0.1:5432 (database ``test``).

    Skips the test when the server is unreachable, unless TRADEFLOW_REQUIRE_POSTGRES=1 (set by
    CI), in which case the test fails instead: PostgreSQL coverage can never silently vanish.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL, **engine_kwargs)
    try:
        with engine.connect() as con:
            con.execute(sa.text("SELECT 1"))
    except Exception as exc:  # the driver's many connection errors
        engine.dispose()
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}"
        if os.environ.get("TRADEFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return engine


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL test database (see :func:`postgres_engine`)."""
    import sqlalchemy as sa

    engine = postgres_engine()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as con:
        con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as con:
            con.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
