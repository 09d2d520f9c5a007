"""Ledger schema migrations and SQLite connection settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from trader.ledger import LATEST_VERSION, Ledger, SchemaTooNew, migrate
from trader.ledger.database import create_ledger_engine
from trader.ledger.tables import Base


def family(type_: sa.types.TypeEngine) -> str:
    """int, float, str, dict, datetime: the level at which the backends' types must agree."""
    return getattr(type_, "impl_instance", type_).python_type.__name__


def schema_of(engine: sa.Engine) -> dict[str, dict[str, object]]:
    """Tables -> columns (type family, nullability), primary key, unique constraints."""
    inspector = sa.inspect(engine)
    out: dict[str, dict[str, object]] = {}
    for table in inspector.get_table_names():
        out[table] = {
            "columns": {c["name"]: (family(c["type"]), c["nullable"])
                        for c in inspector.get_columns(table)},
            "pk": sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
            "unique": sorted(tuple(u["column_names"])
                             for u in inspector.get_unique_constraints(table)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                          for f in inspector.get_foreign_keys(table)),
        }
    return out


def model_schema() -> dict[str, dict[str, object]]:
    """The same view of the ORM models."""
    out: dict[str, dict[str, object]] = {}
    for table in Base.metadata.sorted_tables:
        out[table.name] = {
            "columns": {c.name: (family(c.type), c.nullable) for c in table.columns},
            "pk": sorted(c.name for c in table.primary_key.columns),
            "unique": sorted(tuple(c.name for c in u.columns) for u in table.constraints
                             if isinstance(u, sa.UniqueConstraint)),
            "fks": sorted(((f.parent.name,), f.column.table.name) for f in table.foreign_keys),
        }
    return out


def assert_migrated_schema_matches_models(engine: sa.Engine) -> None:
    assert schema_of(engine) == model_schema()


def test_migrations_create_the_schema_the_models_describe(tmp_path: Path) -> None:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'l.db'}")
    assert sa.inspect(engine).get_table_names() == []  # nothing happens before migrate()
    assert migrate(engine) == LATEST_VERSION
    assert_migrated_schema_matches_models(engine)
    engine.dispose()


def test_migrate_is_idempotent_and_versioned(tmp_path: Path) -> None:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'l.db'}")
    assert migrate(engine) == LATEST_VERSION
    assert migrate(engine) == LATEST_VERSION
    with engine.connect() as con:
        rows = con.execute(sa.text("SELECT version, description FROM schema_version")).all()
    assert [r.version for r in rows] == list(range(1, LATEST_VERSION + 1))
    assert rows[0].description == "initial ledger schema"
    engine.dispose()


def test_a_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).close()
    engine = create_ledger_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("INSERT INTO schema_version VALUES (:v, 'future', "
                            "CURRENT_TIMESTAMP)"), {"v": LATEST_VERSION + 1})
    with pytest.raises(SchemaTooNew):
        migrate(engine)
    with pytest.raises(SchemaTooNew):
        Ledger(url)
    engine.dispose()


def test_migrate_refuses_a_plain_sqlite_engine(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'l.db'}")
    with pytest.raises(ValueError, match="create_ledger_engine"):
        migrate(engine)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()
    with pytest.raises(ValueError, match="file"):
        create_ledger_engine("sqlite://")


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    engine = create_ledger_engine("postgresql://trader@db.invalid/ledger")
    assert engine.dialect.driver == "psycopg" and engine.pool._pre_ping  # type: ignore[attr-defined]
    engine.dispose()


def test_sqlite_connections_get_the_ledger_pragmas(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger, ledger.engine.connect() as con:
        pragma = {name: con.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 10_000,
                      "foreign_keys": 1}


def test_sqlite_writes_take_the_write_lock_up_front(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        statements: list[str] = []
        event.listen(ledger.engine, "before_cursor_execute",
                     lambda conn, cursor, stmt, *args: statements.append(stmt))
        ledger.init_strategy("s", 1.0)
        begins = [s for s in statements if s.startswith("BEGIN")]
        assert begins[0] == "BEGIN IMMEDIATE"  # the write
        statements.clear()
        ledger.trader_state("s")
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN"]  # a read


def test_a_version_1_ledger_with_fills_gains_the_basis_column(tmp_path: Path) -> None:
    from trader.ledger import NewDecision, NewOrder
    from trader.ledger.database import writer
    from trader.ledger.migrations import _VERSION_TABLE, MIGRATIONS

    url = f"sqlite:///{tmp_path / 'l.db'}"
    engine = create_ledger_engine(url)
    with writer(engine).begin() as con:  # the schema as a version-1 trader left it
        _VERSION_TABLE.create(con)
        MIGRATIONS[0].apply(con)
        con.execute(_VERSION_TABLE.insert().values(version=1, description="initial ledger "
                                                   "schema", applied_at=sa.func.now()))
        con.execute(sa.text(
            "INSERT INTO trader_state VALUES ('s', 1000, 1000, 1000, '{}', '{}', '{}', NULL, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        con.execute(sa.text(
            "INSERT INTO decisions (strategy, symbol, candle_open_time, kind, action, reason, "
            "price, created_at) VALUES ('s', 'BTC/USDT', 0, 'signal', 'buy', 'r', 100, "
            "CURRENT_TIMESTAMP)"))
        con.execute(sa.text(
            "INSERT INTO orders VALUES ('old', 1, 0, 's', 'BTC/USDT', 'buy', 'market', 1, NULL,"
            " 100, 'FILLED', 'x1', 1, 100, 0.1, NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        con.execute(sa.text(
            "INSERT INTO fills (client_order_id, trade_id, strategy, symbol, side, price, "
            "amount, fee, fee_currency, ts, created_at) VALUES ('old', 't1', 's', 'BTC/USDT', "
            "'buy', 100, 1, 0.1, 'USDT', 0, CURRENT_TIMESTAMP)"))
    engine.dispose()
    with Ledger(url) as ledger:
        assert ledger.schema_version == LATEST_VERSION >= 3
        assert_migrated_schema_matches_models(ledger.engine)
        (old,) = ledger.fills("s")
        assert (old.trade_id, old.price, old.basis) == ("t1", 100.0, None)
        order = ledger.record_decision(NewDecision(
            strategy="s", symbol="BTC/USDT", candle_open_time=60_000, kind="signal",
            action="buy", reason="r", price=101.0), [NewOrder(side="buy", amount=1.0)])[0]
        basis = {"source": "book", "book_age_s": 0.4, "levels": [[101.0, 1.0]]}
        assert ledger.apply_fill(order.client_order_id, "p1", 101.0, 1.0, 0.1, "USDT", 60_000,
                                 basis)
        assert [f.basis for f in ledger.fills("s")] == [None, basis]


def test_a_version_2_ledger_gains_order_events_that_follow_every_transition(
        tmp_path: Path) -> None:
    from trader.ledger import NewDecision, NewOrder
    from trader.ledger.database import writer
    from trader.ledger.migrations import _VERSION_TABLE, MIGRATIONS

    url = f"sqlite:///{tmp_path / 'l.db'}"
    engine = create_ledger_engine(url)
    with writer(engine).begin() as con:  # the schema as a version-2 trader left it
        _VERSION_TABLE.create(con)
        for m in MIGRATIONS[:2]:
            m.apply(con)
            con.execute(_VERSION_TABLE.insert().values(
                version=m.version, description=m.description, applied_at=sa.func.now()))
    assert "order_events" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    with Ledger(url) as ledger:
        assert ledger.schema_version == LATEST_VERSION
        assert_migrated_schema_matches_models(ledger.engine)
        ledger.init_strategy("s", 1000.0)
        a, b = ledger.record_decision(NewDecision(
            strategy="s", symbol="BTC/USDT", candle_open_time=0, kind="signal", action="buy",
            reason="r", price=100.0), [NewOrder(side="buy", amount=1.0),
                                       NewOrder(side="buy", amount=1.0)])
        ledger.mark_submitted(a.client_order_id, "x1")
        ledger.mark_submitted(a.client_order_id, "x1")  # a repeated ack: no new event
        ledger.apply_fill(a.client_order_id, "t1", 100.0, 0.4, 0.0, "USDT", 1_000)
        ledger.apply_fill(a.client_order_id, "t1", 100.0, 0.4, 0.0, "USDT", 1_000)  # repeat
        ledger.apply_fill(a.client_order_id, "t2", 102.0, 0.6, 0.0, "USDT", 2_000)
        ledger.mark_submitted(b.client_order_id, "x2")
        ledger.mark_canceled(b.client_order_id, "IOC remainder", expired=True)
        steps = [(e.client_order_id, e.state, e.filled) for e in ledger.order_events("s")]
        assert steps == [
            (a.client_order_id, "NEW", 0.0), (b.client_order_id, "NEW", 0.0),
            (a.client_order_id, "ACKED", 0.0), (a.client_order_id, "PARTIALLY_FILLED", 0.4),
            (a.client_order_id, "FILLED", 1.0), (b.client_order_id, "ACKED", 0.0),
            (b.client_order_id, "EXPIRED", 0.0)]
        last = ledger.order_events("s", a.client_order_id)[-1]
        assert (last.exchange_order_id, last.ts) == ("x1", 2_000)
        assert last.average_price == pytest.approx(101.2)
        assert ledger.order(b.client_order_id).status == "CANCELED"


def test_a_version_3_ledger_gains_decision_signals(tmp_path: Path) -> None:
    from trader.ledger import NewDecision
    from trader.ledger.database import writer
    from trader.ledger.migrations import _VERSION_TABLE, MIGRATIONS

    url = f"sqlite:///{tmp_path / 'l.db'}"
    engine = create_ledger_engine(url)
    with writer(engine).begin() as con:  # the schema as a version-3 trader left it
        _VERSION_TABLE.create(con)
        for m in MIGRATIONS[:3]:
            m.apply(con)
            con.execute(_VERSION_TABLE.insert().values(
                version=m.version, description=m.description, applied_at=sa.func.now()))
        con.execute(sa.text(
            "INSERT INTO trader_state VALUES ('s', 1000, 1000, 1000, '{}', '{}', '{}', NULL, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        con.execute(sa.text(
            "INSERT INTO decisions (strategy, symbol, candle_open_time, kind, action, reason, "
            "price, created_at) VALUES ('s', 'BTC/USDT', 0, 'signal', 'buy', 'r', 100, "
            "CURRENT_TIMESTAMP)"))
    columns = {c["name"] for c in sa.inspect(engine).get_columns("decisions")}
    assert "signals" not in columns
    engine.dispose()
    why = ({"source": "rsi", "type": "BUY", "confidence": 0.7, "reason": "RSI(14) = 21",
            "metadata": {"weight": 1.0}},
           {"source": "aggregate", "type": "BUY", "confidence": None,
            "reason": "unanimous of rsi", "metadata": {}})
    with Ledger(url) as ledger:
        assert ledger.schema_version == LATEST_VERSION >= 4
        assert_migrated_schema_matches_models(ledger.engine)
        ledger.record_decision(NewDecision(
            strategy="s", symbol="BTC/USDT", candle_open_time=60_000, kind="signal",
            action="buy", reason="r", price=101.0, signals=why))
        new, old = ledger.decisions("s")
        assert old.signals is None  # recorded before the column existed
        assert new.signals == why
