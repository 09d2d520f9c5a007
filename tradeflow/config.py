"""Typed configuration: YAML profiles in ``config/`` plus ``TRADEFLOW_`` environment overrides.

Settings are frozen pydantic models that reject unknown keys. They are built by
:func:`load_settings`, never at import time. Precedence: environment > YAML file > defaults.
Nested keys are reached with a double underscore: ``TRADEFLOW_EXCHANGE__ID=kraken``.
API keys are read from the environment only (``TRADEFLOW_EXCHANGE__API_KEY`` and
``TRADEFLOW_EXCHANGE__API_SECRET``) and held as ``SecretStr``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tradeflow.config_files import (
    ConfigError,
    Frozen,
    config_error,
    display_path,
    one_or_many,
    read_yaml,
)
from tradeflow.monitoring_settings import MonitoringSettings
from tradeflow.order_flow_settings import RecorderSettings, RetentionSettings
from tradeflow.symbols import Symbols

ENV_PREFIX = "TRADEFLOW_"
ENV_CONFIG_PATH = "TRADEFLOW_CONFIG"
# Environment variables with the prefix that are not configuration keys.
_ENV_NOT_CONFIG = {ENV_CONFIG_PATH, "TRADEFLOW_LIVE_CONFIRM", "TRADEFLOW_REQUIRE_POSTGRES",
                   "TRADEFLOW_REQUIRE_CHROMIUM", "TRADEFLOW_TEST_POSTGRES_URL",
                   "TRADEFLOW_REQUIRE_PROMETHEUS"}
_SECRET_KEYS = {("exchange", "api_key"), ("exchange", "api_secret"),
                ("exchange", "api_password")}
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/@\s]*@")
_DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACKAGE_ROOT / "config" / "default.yaml"


class ExchangeSettings(Frozen):
    """Which exchange to talk to and how."""

    id: str = "binance"
    base_url: str | None = Field(
        None, description="REST base URL override (the simulator, a proxy); websocket derived"
    )
    testnet: bool = Field(False, description="use the exchange's sandbox/testnet URLs")
    market_types: tuple[Literal["spot", "linear", "inverse"], ...] = Field(
        ("spot",), min_length=1,
        description="markets to load: spot; linear for USDT-margined perpetuals and futures "
        "(BTC/USDT:USDT), inverse for coin-margined ones (BTC/USD:BTC)")
    rate_limit: bool = True
    rate_limit_share: float = Field(
        1.0, gt=0, le=1, description="share of the exchange's request rate one client may use "
        "(a Dask backfill gives each of its concurrent series 1/concurrency)")
    timeout_ms: int = Field(10_000, gt=0)
    max_retries: int = Field(6, ge=0, description="retries of a transient failure")
    retry_base_delay_s: float = Field(0.25, gt=0)
    retry_max_delay_s: float = Field(30.0, gt=0)
    rate_limit_max_wait_s: float = Field(
        300.0, ge=0, description="longest a call waits out rate limits (429/418 with "
        "Retry-After) before it fails; these waits do not count as retries")
    breaker_failures: int = Field(
        5, ge=0, description="failed requests in a row that open the exchange's circuit "
        "breaker: no request for breaker_cooldown_s, then one probe (0 = off)")
    breaker_cooldown_s: float = Field(30.0, gt=0)
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_password: SecretStr | None = Field(
        None, description="the key's passphrase, where the exchange has one (OKX)")

    @field_validator("market_types", mode="before")
    @classmethod
    def _types_one_or_many(cls, value: Any) -> Any:
        return one_or_many(value)

    @field_validator("base_url")
    @classmethod
    def _url_ok(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s):// URL such as http://127.0.0.1:8765")
        return value.rstrip("/") if value else value


class StoreSettings(Frozen):
    """Market store: one DuckDB file (embedded default) or DuckLake (many writing hosts)."""

    engine: Literal["duckdb", "ducklake"] = Field(
        "duckdb", description="duckdb: one database file, one writing process at a time; "
        "ducklake: catalog in PostgreSQL, Parquet files under data_path, many writers at once",
    )
    path: str = Field("market.duckdb", description="file under data_dir, a path, or :memory:")
    lock_retries: int = Field(50, ge=0)
    retention: RetentionSettings = RetentionSettings()
    catalog: str | None = Field(
        None, validate_default=True,
        description="ducklake: the PostgreSQL catalog as a libpq DSN, e.g. "
        "'dbname=tradeflow_market host=127.0.0.1 user=postgres' (no password: PGPASSWORD)",
    )
    data_path: str = Field(
        "market-lake", description="ducklake: directory of the Parquet files under data_dir, "
        "or an absolute path; the same shared directory on every host",
    )

    @field_validator("catalog")
    @classmethod
    def _catalog_ok(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and _DSN_PASSWORD.search(value):
            raise ValueError("must not carry a password: libpq reads PGPASSWORD or ~/.pgpass")
        if value is None and info.data.get("engine") == "ducklake":
            raise ValueError("store.engine ducklake needs its PostgreSQL catalog as a libpq "
                             "DSN, e.g. 'dbname=tradeflow_market host=127.0.0.1 user=postgres'")
        return value


class BackfillSettings(Frozen):
    """History download defaults."""

    days: float = Field(30.0, gt=0, allow_inf_nan=False,
                        description="how far back a backfill reaches by default")
    concurrency: int = Field(3, ge=1, description="series fetched at once")
    page_limit: int = Field(1000, ge=1, le=1000)
    task_runner: Literal["local", "dask"] = Field(
        "local", description="local: one event loop, one shared client; dask: one task per "
        "series on a Dask cluster (other processes or hosts)",
    )
    dask_address: str | None = Field(
        None, description="scheduler of a running Dask cluster, e.g. tcp://scheduler:8786; "
        "null: start a temporary local cluster of dask_workers processes",
    )
    dask_workers: int = Field(2, ge=1, description="processes of the temporary local cluster")

    @field_validator("dask_address")
    @classmethod
    def _dask_address_ok(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(tcp|tls|ucx)://[^/\s]+$", value):
            raise ValueError("must be a Dask scheduler address such as tcp://scheduler:8786")
        return value


class MlflowSettings(Frozen):
    """Experiment tracking and the model registry (local SQLite + files by default)."""

    tracking_uri: str | None = Field(
        None, description="default: sqlite:///<data_dir>/mlflow.db; or http://mlflow:5000"
    )
    artifact_root: str | None = Field(None, description="default: <data_dir>/mlartifacts")
    experiment: str = "tradeflow"


class LedgerSettings(Frozen):
    """The trading ledgers (SQLAlchemy URLs): paper and live books never share a database."""

    url: str | None = Field(
        None, description="the paper book; default: sqlite:///<data_dir>/ledger.db; or "
        "postgresql+psycopg://..."
    )
    live_url: str | None = Field(
        None, description="the live book; default: sqlite:///<data_dir>/ledger-live.db"
    )

    @model_validator(mode="after")
    def _books_apart(self) -> LedgerSettings:
        if self.live_url is not None and self.live_url == self.url:
            raise ValueError("live_url must differ from url: paper and live trades never "
                             "share a ledger")
        return self


class PrefectSettings(Frozen):
    """The Prefect server this profile expects (its database) and how to start it."""

    database_url: str | None = Field(
        None, description="the server's database: postgresql+asyncpg://user@host:5432/db "
        "(password from PGPASSWORD or ~/.pgpass); null: Prefect's SQLite under PREFECT_HOME",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_ok(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^(postgresql\+asyncpg|sqlite\+aiosqlite)://", value):
            raise ValueError("the Prefect server needs an async driver: "
                             "postgresql+asyncpg://... or sqlite+aiosqlite:///...")
        if _URL_PASSWORD.search(value):
            raise ValueError("no password in the URL; PGPASSWORD or ~/.pgpass hold it")
        return value

    def server_env(self) -> dict[str, str]:
        """Environment for ``prefect server start`` (empty: Prefect's defaults)."""
        if self.database_url is None:
            return {}
        return {"PREFECT_API_DATABASE_CONNECTION_URL": self.database_url}


class TraderSettings(Frozen):
    """The long-running trader."""

    mode: Literal["paper", "live"] = "paper"
    strategy: str = Field("config/strategies/meanrev_xgb.yaml", description="strategy file")
    also: tuple[str, ...] = Field((), description="more strategy files, each traded by its "
                                  "own trader run beside `strategy` (tradeflow up starts all)")
    max_restarts: int = Field(5, ge=0, description="automatic restarts of a crashed trader "
                              "within restart_window_s before it is left stopped")
    restart_window_s: float = Field(3600.0, gt=0, description="window of max_restarts")
    stale_after_s: float = Field(90.0, gt=0, description="stream silent this long = stale")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the reconnect backoff")
    model_poll_s: float = Field(30.0, gt=0, description="how often to look for a new champion")
    rest_poll_s: float = Field(5.0, gt=0, description="REST polling period without websocket")
    metrics_port: int | None = Field(9108, ge=0, le=65535, description="Prometheus; 0 = off")
    use_websocket: bool = True
    paper_fills: Literal["next_open", "book"] = Field(
        "next_open", description="paper market orders: at the next open as the backtester "
        "fills, or against the live book at decision time")
    max_book_age_s: float = Field(10.0, gt=0, description="an older live book is not used")
    book_poll_s: float = Field(1.0, gt=0, description="order-book polling period without "
                               "an order-book stream")

    @property
    def strategies(self) -> tuple[str, ...]:
        """Every strategy file to trade: ``strategy`` first, then ``also`` (no repeats)."""
        return tuple(dict.fromkeys((self.strategy, *self.also)))

    def metrics_port_of(self, strategy_file: str) -> int | None:
        """The metrics port of one strategy's trader: ``metrics_port`` + its place in
        :attr:`strategies` (0 or None: off)."""
        if not self.metrics_port:
            return self.metrics_port
        return self.metrics_port + self.strategies.index(strategy_file)


Policy = Literal["warn", "quarantine", "exclude"]


class PolicySettings(Frozen):
    """What validation does with a candle failing each soft rule (tradeflow.contracts.rules).

    ``quarantine`` lists it (as hard rules always do) and counts it against the failure
    budget; ``exclude`` keeps it in the store but out of training and backtests; ``warn``
    only reports it. Gaps and a stale last candle concern no stored candle: warn only.
    """

    extreme_return: Policy = "warn"
    # A wick of 19% in a calm market is a bad print far more often than a trade.
    extreme_wick: Policy = "exclude"
    # Forward-filled candles carry no trade: their prices are copies, not the market's.
    synthetic_fill: Policy = "exclude"
    # A series spaced unlike its timeframe is a misnamed file: every candle is suspect.
    timeframe_spacing: Policy = "quarantine"
    volume_spike: Policy = "warn"
    # Candles and trades disagree: either may be wrong (a hole in recorded trades, a bad
    # candle), so only say so by default.
    trades_vs_candles: Policy = "warn"
    gap: Literal["warn"] = "warn"
    stale: Literal["warn"] = "warn"


class ValidationSettings(Frozen):
    """Candle validation: soft-rule thresholds and policies, the quarantine budget."""

    return_sigma_k: float = Field(
        8.0, gt=0, description="extreme move: |log return| beyond k rolling std devs"
    )
    return_window: int = Field(240, ge=10, description="candles in the rolling return std")
    volume_window: int = Field(240, ge=10, description="candles in the rolling volume mean/std")
    volume_z_max: float = Field(12.0, gt=0, description="volume spike: z-score above this")
    freshness_candles: int = Field(
        3, ge=0, description="stale: last candle more than N candles behind the last closed"
    )
    max_hard_failure_share: float = Field(
        0.01, ge=0, le=1,
        description="validate fails above this share of judged candles quarantined (hard "
        "rules, and soft rules whose policy is quarantine)",
    )
    policies: PolicySettings = PolicySettings()

    def policy(self, rule: str) -> str:
        """The policy of a rule: a soft rule's as configured; hard rules always quarantine."""
        return str(getattr(self.policies, rule, "quarantine"))


class Settings(Frozen):
    """The whole resolved configuration of one tradeflow profile."""

    data_dir: Path = Path("data")
    symbols: Symbols = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    timeframes: tuple[str, ...] = ("1m", "5m", "1h")
    exchange: ExchangeSettings = ExchangeSettings()
    # The simulator's own section, kept as written: the simulator checks it with its own model
    # when the command line loads the profile (cli/profile.py); the core does not depend on it.
    simulator: dict[str, Any] = Field(default_factory=dict)
    store: StoreSettings = StoreSettings()
    backfill: BackfillSettings = BackfillSettings()
    mlflow: MlflowSettings = MlflowSettings()
    ledger: LedgerSettings = LedgerSettings()
    prefect: PrefectSettings = PrefectSettings()
    trader: TraderSettings = TraderSettings()
    recorder: RecorderSettings = RecorderSettings()
    validation: ValidationSettings = ValidationSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("timeframes", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return one_or_many(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("symbols must be unique")
        return value

    @field_validator("timeframes")
    @classmethod
    def _timeframes_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from tradeflow import timeframes

        for tf in value:
            timeframes.parse(tf)
        return value

    def data_path(self, name: str) -> Path:
        """A runtime file under ``data_dir``."""
        return self.data_dir / name

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return self.mlflow.artifact_root or (self.data_dir / "mlartifacts").resolve().as_uri()

    @property
    def ledger_url(self) -> str:
        """The paper book's ledger."""
        return self.ledger.url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    def ledger_url_for(self, mode: str) -> str:
        """The ledger of ``mode``'s book: paper runs never resume live state, nor the reverse."""
        if mode == "live":
            return self.ledger.live_url or f"sqlite:///{self.data_dir / 'ledger-live.db'}"
        return self.ledger_url

    @property
    def store_path(self) -> str:
        """Where the market data lives: the DuckDB file (``:memory:`` passes through), or with
        DuckLake its Parquet directory (``store.data_path``); relative paths under data_dir."""
        if self.store.engine == "ducklake":
            lake = Path(self.store.data_path)
            return str(lake if lake.is_absolute() else self.data_dir / lake)
        if self.store.path == ":memory:" or Path(self.store.path).is_absolute():
            return self.store.path
        if "/" in self.store.path:
            return self.store.path
        return str(self.data_dir / self.store.path)

    @property
    def store_catalog(self) -> str | None:
        """DuckLake's PostgreSQL catalog DSN, or None for the DuckDB file."""
        return self.store.catalog if self.store.engine == "ducklake" else None


S = TypeVar("S", bound=Settings)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    model: type[S] = Settings,  # type: ignore[assignment]
) -> S:
    """Build settings from a YAML profile, the environment and explicit overrides.

    ``path`` defaults to ``$TRADEFLOW_CONFIG`` or ``config/default.yaml``. ``model`` may be a
    subclass of :class:`Settings` that checks more sections (the command line's profile also
    checks the simulator's). Raises :class:`ConfigError` with a one-line message on any
    problem. :func:`tradeflow.exchange.checks.check_against_exchange` checks the exchange.
    """
    env = dict(os.environ if env is None else env)
    source = Path(path or env.get(ENV_CONFIG_PATH) or DEFAULT_CONFIG)
    data = read_yaml(source, "config")
    for secret in _SECRET_KEYS:
        if _dig(data, secret) is not None:
            key = ".".join(secret)
            raise ConfigError(
                key,
                "***",
                "secrets are read only from the environment "
                f"({ENV_PREFIX}{'__'.join(secret).upper()})",
                str(source),
            )
    from_env = _env_overrides(env)
    _merge(data, from_env)
    if overrides:
        _merge(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, model, display_path(source), from_env) from None


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_CONFIG:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        key = tuple(parts)
        # Secrets stay strings verbatim; other values are parsed as YAML scalars or lists.
        value: Any = raw if key in _SECRET_KEYS else _parse_env_value(raw)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _parse_env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _dig(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _in_env(from_env: dict[str, Any], keys: tuple[str, ...]) -> bool:
    # Presence, not value: an empty variable (TRADEFLOW_SYMBOLS=) parses to None.
    node: Any = from_env
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return isinstance(node, dict) and keys[-1] in node


def _to_config_error(exc: ValidationError, model: type[Settings], source: str,
                     from_env: dict[str, Any]) -> ConfigError:
    loc = [str(p) for p in exc.errors()[0]["loc"]]
    # Name the environment variable when the bad value came from one.
    for depth in range(len(loc), 0, -1):
        if _in_env(from_env, tuple(loc[:depth])):
            source = "$" + ENV_PREFIX + "__".join(loc[:depth]).upper()
            if _dig(from_env, tuple(loc[:depth])) is None:
                return ConfigError(".".join(loc[:depth]), "",
                                   "the variable is empty; unset it or give a value", source)
            break
    return config_error(exc, model, source, redact=_redact)


def _redact(loc: list[str], value: Any) -> Any:
    if tuple(loc[:2]) in _SECRET_KEYS:
        return "***"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1***@", value)  # a database URL's password
        return _DSN_PASSWORD.sub(r"\1***", value)  # a libpq DSN's
    return value
