"""The scale-out profile (config/scale.yaml) on the PostgreSQL at 127.0.0.1:5432.

A Prefect server whose database is PostgreSQL, MLflow with a PostgreSQL backend store, the
backfill flow fanned out over Dask worker processes, and two traders (one per strategy) on one
PostgreSQL ledger. Each PostgreSQL-backed piece gets a database of its own, dropped at the end.
Like the ``postgres_url`` fixture, these tests skip when PostgreSQL is down unless
TRADEFLOW_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_URL, postgres_engine
from tests.fixtures.prefect import prefect_env, running_server
from tests.fixtures.simulator import SimFactory
from tradeflow.config import Settings, load_settings
from tradeflow.market.backfill import SeriesReport
from tradeflow.market.backfill_run import JobFailed
from tradeflow.market.store import MarketStore, SeriesKey

ROOT = Path(__file__).resolve().parents[2]
SCALE = ROOT / "config" / "scale.yaml"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def scale_settings(**overrides: Any) -> Settings:
    """The scale profile as a process with no TRADEFLOW_ variables would see it."""
    return load_settings(SCALE, env={}, overrides=overrides)


def require_postgres() -> sa.Engine:
    """An AUTOCOMMIT engine on the test server; the conftest skip/fail rule."""
    return postgres_engine(isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def fresh_database() -> Iterator[Callable[[str], sa.URL]]:
    """``fresh_database(driver)``: a new, empty database on the test server, as a URL."""
    engine = require_postgres()
    created: list[str] = []

    def create(driver: str) -> sa.URL:
        name = f"tf_scale_{uuid.uuid4().hex[:10]}"
        with engine.connect() as con:
            con.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return sa.make_url(POSTGRES_URL).set(drivername=driver, database=name, query={})

    yield create
    with engine.connect() as con:
        for name in created:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def query(url: sa.URL, sql: str) -> list[Any]:
    engine = sa.create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as con:
            return list(con.execute(sa.text(sql)))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class PgPrefect:
    api_url: str
    database: sa.URL  # the server's own database
    env: dict[str, str]  # for client processes: PREFECT_API_URL and a private PREFECT_HOME


@pytest.fixture(scope="module")
def pg_prefect(fresh_database: Callable[[str], sa.URL],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgPrefect]:
    """``prefect server start`` on a fresh PostgreSQL database, set up from the scale profile."""
    database = fresh_database("postgresql+asyncpg")
    settings = scale_settings(prefect={"database_url": database.render_as_string(False)})
    home = tmp_path_factory.mktemp("prefect-pg")
    with running_server(home, extra_env=settings.prefect.server_env(), ui=False) as api:
        yield PgPrefect(api, database, prefect_env(home, api))


@pytest.fixture(scope="module")
def mlflow_uri(fresh_database: Callable[[str], sa.URL]) -> Iterator[str]:
    """A fresh PostgreSQL database as MLflow backend store; MLflow's global URIs restored."""
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield fresh_database("postgresql+psycopg").render_as_string(False)
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


# -- (a) the profile ---------------------------------------------------------------------------

def test_scale_profile_points_every_shared_store_at_postgres() -> None:
    from tradeflow.market.backfill_run import dask_cluster_kwargs

    s = scale_settings()
    assert s.ledger_url.startswith("postgresql+psycopg://")
    assert s.mlflow_tracking_uri.startswith("postgresql+psycopg://")
    assert s.prefect.database_url is not None
    assert s.prefect.database_url.startswith("postgresql+asyncpg://")
    assert s.prefect.server_env() == {"PREFECT_API_DATABASE_CONNECTION_URL":
                                      s.prefect.database_url}
    for url in (s.ledger_url, s.mlflow_tracking_uri, s.prefect.database_url):
        parsed = sa.make_url(url)
        assert (parsed.host, parsed.port, parsed.password) == ("127.0.0.1", 5432, None)
    assert len({sa.make_url(u).database for u in (s.ledger_url, s.mlflow_tracking_uri,
                                                   s.prefect.database_url)}) == 3
    # The market store: DuckLake, its catalog a fourth database on the same server.
    assert s.store.engine == "ducklake" and s.store_catalog is not None
    catalog = dict(part.split("=", 1) for part in s.store_catalog.split())
    assert catalog["host"] == "127.0.0.1" and "password" not in catalog
    assert catalog["dbname"] not in {sa.make_url(u).database for u in (
        s.ledger_url, s.mlflow_tracking_uri, s.prefect.database_url)}
    assert s.backfill.task_runner == "dask" and s.backfill.dask_address is None
    assert dask_cluster_kwargs(s.backfill)["n_workers"] == s.backfill.dask_workers >= 2
    assert s.symbols == SYMBOLS and s.exchange.base_url == "http://127.0.0.1:8765"
    # The environment still wins, as in every profile.
    moved = load_settings(SCALE, env={"TRADEFLOW_BACKFILL__DASK_ADDRESS": "tcp://sched:8786",
                                      "TRADEFLOW_LEDGER__URL": "sqlite:///x.db"})
    assert moved.backfill.dask_address == "tcp://sched:8786"
    assert moved.ledger_url == "sqlite:///x.db"


def test_prefect_database_url_needs_an_async_driver_and_no_password() -> None:
    from tradeflow.config_files import ConfigError

    with pytest.raises(ConfigError, match="prefect.database_url.*async driver"):
        scale_settings(prefect={"database_url": "postgresql://postgres@db/prefect"})
    with pytest.raises(ConfigError, match="no password in the URL") as err:
        scale_settings(prefect={"database_url": "postgresql+asyncpg://u:hunter2@db/p"})
    assert "hunter2" not in str(err.value) and "u:***@db" in str(err.value)
    with pytest.raises(ConfigError, match="backfill.dask_address"):
        scale_settings(backfill={"dask_address": "scheduler:8786"})


def test_a_failed_series_survives_the_trip_back_from_a_worker_process() -> None:
    report = SeriesReport(SeriesKey("binance", "NOPE/USDT", "1m"), status="failed",
                          error="no such market", pages=2)
    back = pickle.loads(pickle.dumps(JobFailed(report, retryable=False)))
    assert isinstance(back, JobFailed) and back.retryable is False
    assert back.report == report and "no such market" in str(back)


# -- (b) the Prefect server on PostgreSQL ------------------------------------------------------

BOUNDED_FLOW = """
import json, threading, time
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
from tasks.market import submit_bounded

lock, running, peak = threading.Lock(), [0], [0]

@task
def hold(n: int) -> int:
    with lock:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
    time.sleep(0.3)
    with lock:
        running[0] -= 1
    return n * n

@flow(name="bounded", task_runner=ThreadPoolTaskRunner(max_workers=6))
def bounded() -> list[int]:
    return [f.result() for f in submit_bounded(hold, list(range(6)), 2)]

print(json.dumps({"squares": bounded(), "peak": peak[0]}))
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_prefect_server_on_postgres_runs_a_flow_to_completion(pg_prefect: PgPrefect) -> None:
    proc = subprocess.run([sys.executable, "-c", BOUNDED_FLOW], cwd=ROOT, env=pg_prefect.env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"squares": [0, 1, 4, 9, 16, 25], "peak": 2}  # never more than 2 at once
    # The runs are rows of the PostgreSQL database the server was started on.
    runs = query(pg_prefect.database, "SELECT r.state_type, count(t.id) FROM flow_run r "
                 "JOIN flow f ON f.id = r.flow_id JOIN task_run t ON t.flow_run_id = r.id "
                 "WHERE f.name = 'bounded' AND t.state_type = 'COMPLETED' GROUP BY 1")
    assert [(str(state), n) for state, n in runs] == [("COMPLETED", 6)]


# -- (c) MLflow on PostgreSQL ------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.slow
def test_mlflow_on_postgres_logs_a_run_and_registers_an_aliased_version(
    mlflow_uri: str, tmp_path: Path
) -> None:
    import mlflow

    from models.registry import champion, configure_tracking
    from tests.fixtures.models import register_wiggle

    settings = scale_settings(data_dir=str(tmp_path), mlflow={"tracking_uri": mlflow_uri})
    configure_tracking(settings)
    with mlflow.start_run() as run:
        mlflow.log_param("profile", "scale")
        mlflow.log_metric("sharpe", 1.25)
    assert register_wiggle("tradeflow-scale-c") == "1"
    version = mlflow.MlflowClient().get_model_version_by_alias("tradeflow-scale-c", "champion")
    assert str(version.version) == "1"
    found = champion("tradeflow-scale-c")
    assert found is not None and found.version == "1"
    db = sa.make_url(mlflow_uri)
    assert query(db, f"SELECT value FROM metrics WHERE run_uuid = '{run.info.run_id}'") == [
        (1.25,)]
    assert query(db, "SELECT name, alias, version FROM registered_model_aliases") == [
        ("tradeflow-scale-c", "champion", 1)]
    # The model files went to the profile's artifact root (<data_dir>/mlartifacts).
    assert any((tmp_path / "mlartifacts").rglob("MLmodel"))


# -- (d) backfill on Dask worker processes -----------------------------------------------------

@pytest.mark.postgres
@pytest.mark.slow
def test_backfill_on_two_dask_worker_processes_fills_the_store_completely(
    pg_prefect: PgPrefect, sim_factory: SimFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, lake_catalog: str,
) -> None:
    from distributed import Client, LocalCluster

    from flows.backfill import backfill

    sim = sim_factory(history_days=1.0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for name in [k for k in os.environ if k.startswith("TRADEFLOW_")]:
            monkeypatch.delenv(name)
        for name, value in {"DATA_DIR": str(tmp_path), "EXCHANGE__BASE_URL": sim.base_url,
                            "TIMEFRAMES": "1m,5m", "EXCHANGE__RETRY_BASE_DELAY_S": "0.05",
                            "BACKFILL__DASK_ADDRESS": cluster.scheduler_address,
                            "STORE__CATALOG": lake_catalog}.items():
            monkeypatch.setenv(f"TRADEFLOW_{name}", value)
        result = asyncio.run(backfill(days=0.5, config=str(SCALE)))
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        pids = set(client.run(os.getpid).values())
    assert len(result) == 6 and all(r["missing"] == 0 for r in result), result
    assert len(pids) == 2 and os.getpid() not in pids
    assert sorted(executed.values())[0] >= 1 and sum(executed.values()) >= 6, executed
    store = MarketStore(tmp_path / "market-lake", catalog=lake_catalog, read_only=True)
    assert store.duplicate_count() == 0
    assert sorted((k.symbol, k.timeframe) for k in store.series()) == sorted(
        (s, tf) for s in SYMBOLS for tf in ("1m", "5m"))
    for key in store.series():
        bounds = store.bounds(key)
        assert bounds is not None
        assert bounds[2] >= (720 if key.timeframe == "1m" else 144) - 1
    runs = query(pg_prefect.database, "SELECT state_type, count(*) FROM task_run "
                                      "WHERE name LIKE 'backfill binance:%' GROUP BY 1")
    assert [(str(state), n) for state, n in runs] == [("COMPLETED", 6)]


# -- (e) two traders, one ledger ---------------------------------------------------------------

STRATEGY = """
name: {name}
symbols: [{symbols}]
timeframe: 1m
features: [{{name: returns}}]
signal: {{enter_above: {enter}, exit_below: 0.5}}
sizing: {{kind: fixed_fraction, fraction: 0.3}}
risk: {{max_orders_per_minute: 1000}}
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_two_traders_with_different_strategies_share_one_postgres_ledger(
    postgres_url: str, mlflow_uri: str, sim_factory: SimFactory, tmp_path: Path
) -> None:
    from models.registry import configure_tracking
    from tests.fixtures.models import register_wiggle
    from trader.ledger import Ledger

    sim = sim_factory(history_days=0.5, speed=60.0, ws_update_ms=200)
    configure_tracking(scale_settings(data_dir=str(tmp_path),
                                      mlflow={"tracking_uri": mlflow_uri}))
    strategies = {"scale-a": ("BTC/USDT", "ETH/USDT"), "scale-b": ("ETH/USDT", "SOL/USDT")}
    for name, symbols in strategies.items():
        (tmp_path / f"{name}.yaml").write_text(STRATEGY.format(
            name=name, symbols=", ".join(symbols), enter=0.55 if name == "scale-a" else 0.52))
        register_wiggle(f"tradeflow-{name}", flip=name == "scale-b")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_CONFIG=str(SCALE), TRADEFLOW_DATA_DIR=str(tmp_path),
               TRADEFLOW_EXCHANGE__BASE_URL=sim.base_url, TRADEFLOW_LEDGER__URL=postgres_url,
               TRADEFLOW_MLFLOW__TRACKING_URI=mlflow_uri)
    candles = 6
    traders = [subprocess.Popen(
        [sys.executable, "-m", "cli.main", "trade", "--strategy",
         str(tmp_path / f"{name}.yaml"), "--max-candles", str(candles), "--metrics-port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in strategies]
    for proc in traders:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
    with Ledger(postgres_url) as ledger:
        assert ledger.strategies() == sorted(strategies)
        times = {}
        for name, symbols in strategies.items():
            assert ledger.check_consistency(name) == []
            times[name] = [e.ts for e in ledger.equity_history(name)]
            assert len(times[name]) == candles
            orders = ledger.orders(name)
            assert {o.strategy for o in orders} <= {name}
            assert {o.symbol for o in orders} <= set(symbols)
            assert {f.strategy for f in ledger.fills(name)} <= {name}
            assert {p.symbol for p in ledger.positions(name)} <= set(symbols)
        # They traded the same candles at the same time, each booking only its own rows.
        assert set(times["scale-a"]) & set(times["scale-b"])
        ids = [{o.client_order_id for o in ledger.orders(n)} for n in strategies]
        assert not ids[0] & ids[1]
        assert ids[0] or ids[1], "the wiggle models trade within a few candles"
