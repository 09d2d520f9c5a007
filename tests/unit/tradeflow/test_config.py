"""Configuration: defaults, environment overrides, secrets, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tradeflow.config import load_settings
from tradeflow.config_files import ConfigError
from tradeflow.exchange.checks import check_against_exchange

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_default_profile_is_the_simulator() -> None:
    s = load_settings(env={})
    assert s.exchange.id == "binance"
    assert s.exchange.base_url == "http://127.0.0.1:8765"
    assert s.symbols == ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    assert s.timeframes == ("1m", "5m", "1h")
    assert s.data_dir == Path("data")
    assert s.store_path == "data/market.duckdb"


def test_settings_are_frozen() -> None:
    s = load_settings(env={})
    with pytest.raises(Exception, match="frozen"):
        s.symbols = ("X/Y",)  # type: ignore[misc]


def test_environment_overrides_nested_keys_and_lists() -> None:
    s = load_settings(env={"TRADEFLOW_EXCHANGE__TIMEOUT_MS": "2500",
                           "TRADEFLOW_SYMBOLS": "BTC/USDT, ETH/USDT",
                           "TRADEFLOW_BACKFILL__DAYS": "2"})
    assert s.exchange.timeout_ms == 2500
    assert s.symbols == ("BTC/USDT", "ETH/USDT")
    assert s.backfill.days == 2


def test_api_keys_come_from_environment_as_secrets() -> None:
    s = load_settings(env={"TRADEFLOW_EXCHANGE__API_KEY": "k123",
                           "TRADEFLOW_EXCHANGE__API_SECRET": "s456"})
    assert s.exchange.api_key is not None
    assert s.exchange.api_key.get_secret_value() == "k123"
    assert "s456" not in repr(s) and "s456" not in str(s.model_dump())


def test_api_key_in_yaml_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "exchange:\n  api_secret: hunter2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "hunter2" not in str(err.value)
    assert "TRADEFLOW_EXCHANGE__API_SECRET" in str(err.value)


@pytest.mark.parametrize(
    ("yaml_text", "env", "key", "allowed"),
    [
        ("colour: red\n", {}, "colour", "unknown key; allowed: backfill, data_dir"),
        ("exchange:\n  idd: x\n", {}, "exchange.idd", "allowed: api_key"),
        ("symbols: [BTCUSDT]\n", {}, "symbols", "BASE/QUOTE"),
        ("timeframes: [1x]\n", {}, "timeframes", "unit in s m h d w M"),
        ("backfill:\n  days: -3\n", {}, "backfill.days", "greater than 0"),
        ("backfill:\n  concurrency: 0\n", {}, "backfill.concurrency", "greater than or equal"),
        ("", {"TRADEFLOW_STORE__LOCK_RETRIES": "-1"}, "store.lock_retries", "greater than"),
        ("store:\n  engine: lake\n", {}, "store.engine", "'duckdb' or 'ducklake'"),
        ("store:\n  engine: ducklake\n", {}, "store.catalog", "needs its PostgreSQL catalog"),
        ("store:\n  engine: ducklake\n  catalog: dbname=m password=hunter2\n", {},
         "store.catalog", "password=***'"),
    ],
)
def test_bad_config_names_key_value_and_what_is_allowed(
    tmp_path: Path, yaml_text: str, env: dict[str, str], key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, yaml_text), env=env)
    message = str(err.value)
    assert "\n" not in message
    assert f"{key} = " in message
    assert allowed in message


def test_error_names_the_environment_variable_it_came_from() -> None:
    with pytest.raises(ConfigError, match=r"\$TRADEFLOW_BACKFILL__DAYS"):
        load_settings(env={"TRADEFLOW_BACKFILL__DAYS": "-1"})


def test_exchange_checks_against_ccxt() -> None:
    with pytest.raises(ConfigError, match="not a ccxt exchange.*binance"):
        check_against_exchange(load_settings(env={"TRADEFLOW_EXCHANGE__ID": "binanse"}))
    with pytest.raises(ConfigError, match="binance has no such timeframe; allowed: 1s 1m"):
        check_against_exchange(load_settings(env={"TRADEFLOW_TIMEFRAMES": "1m,2m"}))


def test_cli_reports_bad_config_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, "exchange:\n  id: binanse\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--config", str(path), "config",
         "--check-exchange"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "exchange.id = 'binanse'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_profile_given_as_a_strategy_names_the_missing_keys_in_one_short_line(
        tmp_path: Path) -> None:
    from tradeflow.strategy import load_strategy

    with pytest.raises(ConfigError) as info:
        load_strategy("config/default.yaml")
    message = str(info.value)
    assert message == ("config error (config/default.yaml): features: required key missing "
                       "(a strategy file looks like config/strategies/meanrev_xgb.yaml)")
    bare = tmp_path / "bare.yaml"
    bare.write_text("symbols: [BTC/USDT]\n")
    with pytest.raises(ConfigError, match=r"bare.yaml\): features: required key missing"):
        load_strategy(bare)


def test_perpetual_and_dated_future_symbols_are_one_symbol_type() -> None:
    from tradeflow.symbols import parse_symbol

    settings = load_settings(env={"TRADEFLOW_SYMBOLS": "BTC/USDT:USDT, ETH/USD:ETH-250926"})
    assert settings.symbols == ("BTC/USDT:USDT", "ETH/USD:ETH-250926")
    perp = parse_symbol("BTC/USDT:USDT")
    assert (perp.base, perp.quote, perp.settle, perp.is_spot) == ("BTC", "USDT", "USDT", False)
    assert parse_symbol("BTC/USDT").is_spot
    for bad in ("BTC/USDT:", "BTC/USDT:usdt", "BTC:USDT", "BTC/USDT:USDT-2509"):
        with pytest.raises(ValueError, match="BASE/QUOTE:SETTLE for perpetuals"):
            parse_symbol(bad)
    kinds = [parse_symbol(s).market_type for s in ("BTC/USDT", "BTC/USDT:USDT",
                                                     "BTC/USDT:USDT-250926", "BTC/USD:BTC")]
    assert kinds == ["spot", "linear", "linear", "inverse"]


def test_exchange_checks_that_every_symbol_is_of_a_loaded_market_type() -> None:
    perps = {"TRADEFLOW_SYMBOLS": "BTC/USDT, BTC/USDT:USDT"}
    with pytest.raises(ConfigError) as spot_only:
        check_against_exchange(load_settings(env=perps))
    assert str(spot_only.value) == (
        "config error: exchange.market_types = ['spot']: BTC/USDT:USDT is a USDT-margined "
        "(linear) perpetual or future; add linear to exchange.market_types "
        "(e.g. [spot, linear])")
    with pytest.raises(ConfigError, match="BTC/USD:BTC is a coin-margined .* add inverse"):
        check_against_exchange(load_settings(env={"TRADEFLOW_SYMBOLS": "BTC/USD:BTC",
                                                  "TRADEFLOW_EXCHANGE__MARKET_TYPES": "linear"}))
    with pytest.raises(ConfigError, match="BTC/USDT is a spot market; add spot"):
        check_against_exchange(load_settings(env={**perps,
                                                  "TRADEFLOW_EXCHANGE__MARKET_TYPES": "linear"}))
    check_against_exchange(load_settings(env={**perps,
                                              "TRADEFLOW_EXCHANGE__MARKET_TYPES": "spot,linear"}))


def test_validation_policies_default_per_rule_and_refuse_what_a_rule_cannot_do(
        tmp_path: Path) -> None:
    from tradeflow.contracts.rules import RULES, SOFT_RULES

    cfg = load_settings(env={}).validation
    assert set(cfg.policies.model_dump()) == set(SOFT_RULES)  # one policy per soft rule
    assert cfg.policy("synthetic_fill") == "exclude" and cfg.policy("high_ge_body") == \
        "quarantine"
    for rule in SOFT_RULES:  # rules about a series (gap, stale) can only warn
        field = type(cfg.policies).model_fields[rule]
        assert ("exclude" in str(field.annotation)) == RULES[rule].per_candle, rule
    custom = load_settings(env={"TRADEFLOW_VALIDATION__POLICIES__EXTREME_WICK": "warn"})
    assert custom.validation.policy("extreme_wick") == "warn"
    assert custom.validation.policy("synthetic_fill") == "exclude"  # others keep defaults
    for text, allowed in (("gap: exclude", "Input should be 'warn'"),
                          ("high_ge_body: warn", "unknown key; allowed: extreme_return"),
                          ("extreme_wick: drop", "'warn', 'quarantine' or 'exclude'")):
        with pytest.raises(ConfigError, match=allowed) as err:
            load_settings(write(tmp_path, f"validation:\n  policies:\n    {text}\n"), env={})
        assert "\n" not in str(err.value)


def test_market_types_are_a_list_from_yaml_or_the_environment() -> None:
    settings = load_settings(env={"TRADEFLOW_EXCHANGE__MARKET_TYPES": "spot, linear"})
    assert settings.exchange.market_types == ("spot", "linear")
    assert load_settings(env={}).exchange.market_types == ("spot",)
    with pytest.raises(ConfigError, match="exchange.market_types"):
        load_settings(env={"TRADEFLOW_EXCHANGE__MARKET_TYPES": "swap"})


def test_paper_and_live_books_are_separate_ledgers() -> None:
    s = load_settings(env={})
    assert s.ledger_url_for("paper") == s.ledger_url == "sqlite:///data/ledger.db"
    assert s.ledger_url_for("live") == "sqlite:///data/ledger-live.db"
    moved = load_settings(env={"TRADEFLOW_LEDGER__LIVE_URL": "sqlite:///live.db"})
    assert moved.ledger_url_for("live") == "sqlite:///live.db"
    with pytest.raises(ConfigError, match="live_url must differ from url"):
        load_settings(env={"TRADEFLOW_LEDGER__URL": "sqlite:///one.db",
                           "TRADEFLOW_LEDGER__LIVE_URL": "sqlite:///one.db"})


def test_an_empty_environment_variable_is_blamed_on_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"TRADEFLOW_SYMBOLS": ""})
    assert str(err.value) == ("config error ($TRADEFLOW_SYMBOLS): symbols = '': the variable "
                              "is empty; unset it or give a value")
    # an empty variable is fine where null is (the base URL: real Binance)
    assert load_settings(env={"TRADEFLOW_EXCHANGE__BASE_URL": ""}).exchange.base_url is None


def test_backfill_days_and_rate_limit_wait_are_finite_numbers() -> None:
    assert load_settings(env={}).exchange.rate_limit_max_wait_s == 300
    for name in ("nan", "inf"):
        with pytest.raises(ConfigError, match="backfill.days"):
            load_settings(env={"TRADEFLOW_BACKFILL__DAYS": name})


def test_the_ducklake_store_lives_under_data_path_with_its_catalog() -> None:
    s = load_settings(env={"TRADEFLOW_STORE__ENGINE": "ducklake",
                           "TRADEFLOW_STORE__CATALOG": "dbname=market host=127.0.0.1"})
    assert s.store_path == "data/market-lake"
    assert s.store_catalog == "dbname=market host=127.0.0.1"
    assert load_settings(env={}).store_catalog is None  # the embedded default: one file
