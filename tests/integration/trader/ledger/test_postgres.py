"""The ledger's core scenarios, schema and migration on PostgreSQL (the scale-out profile)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.unit.trader.ledger import test_ledger as core
from tests.unit.trader.ledger.test_migrations import assert_migrated_schema_matches_models
from trader.ledger import LATEST_VERSION, Ledger

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("scenario", core.SCENARIOS, ids=lambda f: f.__name__[5:])
def test_core_scenario_on_postgres(scenario: Callable[[Ledger], None],
                                   postgres_url: str) -> None:
    with Ledger(postgres_url) as ledger:
        ledger.init_strategy(core.S, 10_000.0)
        scenario(ledger)


def test_postgres_schema_matches_the_models_and_migrates_once(postgres_url: str) -> None:
    with Ledger(postgres_url) as first, Ledger(postgres_url) as second:
        assert first.schema_version == second.schema_version == LATEST_VERSION
        assert_migrated_schema_matches_models(first.engine)
        with first.engine.connect() as con:
            versions = con.execute(sa.text("SELECT version FROM schema_version")).scalars()
            assert list(versions) == list(range(1, LATEST_VERSION + 1))
            types: dict[str, str] = {str(name): str(kind) for name, kind in con.execute(sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'trader_state'"))}
        assert types["last_candles"] == "jsonb"
        assert types["updated_at"] == "timestamp with time zone"
        assert types["cash"] == "double precision"


def test_postgres_wall_times_come_back_in_utc(postgres_url: str) -> None:
    with Ledger(postgres_url) as ledger:
        state = ledger.init_strategy("s", 1.0)
        assert state.updated_at.utcoffset() is not None
        assert state.updated_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
