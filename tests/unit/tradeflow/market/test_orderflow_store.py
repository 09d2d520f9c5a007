"""Order-flow store: trades idempotent on ids whatever the order and repeats of a batch, the
contract on every write, snapshots and tickers keyed, range reads, holes, retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tradeflow.config import RetentionSettings, load_settings
from tradeflow.config_files import ConfigError
from tradeflow.contracts.trades import TradesRefused
from tradeflow.market.orderflow_store import DAY_MS, OrderFlowStore
from tradeflow.market.store import MarketStore

EX, SYM = "binance", "BTC/USDT"
T0 = 1_767_225_600_000


def trades(first: int, n: int, price: float = 100.0) -> pd.DataFrame:
    """Trades ``first`` .. ``first + n - 1``, 10 ms apart by id, at ``price`` (plus id % 7)."""
    ids = np.arange(first, first + n, dtype=np.int64)
    return pd.DataFrame({"id": ids, "ts": T0 + ids * 10, "price": price + ids % 7,
                         "amount": 0.1 + ids % 3, "side": np.where(ids % 2, "sell", "buy")})


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OrderFlowStore:
    path = ":memory:" if request.param == "memory" else tmp_path / "m.duckdb"
    s = OrderFlowStore(path)
    yield s
    s.close()


def test_trades_are_stored_once_whatever_the_order_and_repeats(store: OrderFlowStore) -> None:
    assert store.write_trades(trades(1, 100), exchange=EX, symbol=SYM) == 100
    assert store.write_trades(trades(1, 100), exchange=EX, symbol=SYM) == 0
    mixed = pd.concat([trades(150, 50), trades(90, 80, price=200.0), trades(120, 10)])
    shuffled = mixed.sample(frac=1.0, random_state=7)  # out of order, ids repeated
    assert store.write_trades(shuffled, exchange=EX, symbol=SYM) == 99  # 101..199
    got = store.trades(EX, SYM).set_index("id")
    assert got.index.tolist() == list(range(1, 200))
    # a stored trade wins over a different copy: an exchange never changes a trade
    assert got.loc[1:100, "price"].tolist() == trades(1, 100)["price"].tolist()
    assert got.loc[101:119, "price"].tolist() == trades(101, 19, price=200.0)["price"].tolist()
    assert got.loc[150:, "ts"].tolist() == trades(150, 50)["ts"].tolist()
    assert store.duplicate_trades() == 0 and store.trade_holes(EX, SYM) == []
    bounds = store.trade_bounds(EX, SYM)
    assert (bounds.first_id, bounds.last_id, bounds.count) == (1, 199, 199)
    assert (bounds.first_ts, bounds.last_ts) == (T0 + 10, T0 + 1990)


def test_series_are_split_by_columns_and_arrow_is_accepted(store: OrderFlowStore) -> None:
    a, b = trades(1, 5).assign(symbol="BTC/USDT"), trades(1, 3).assign(symbol="ETH/USDT")
    table = pa.Table.from_pandas(pd.concat([a, b]).assign(exchange=EX), preserve_index=False)
    assert store.write_trades(table) == 8
    assert len(store.trades(EX, "ETH/USDT")) == 3
    assert store.trades(EX, "BTC/USDT")["side"].tolist() == ["sell", "buy"] * 2 + ["sell"]
    with pytest.raises(ValueError, match=r"\['symbol'\] missing"):
        store.write_trades(trades(1, 2), exchange=EX)


def test_string_ids_and_datetime_times_are_typed(store: OrderFlowStore) -> None:
    frame = trades(10, 4)
    frame = frame.assign(id=frame["id"].astype(str),
                         ts=pd.to_datetime(frame["ts"], unit="ms", utc=True))
    assert store.write_trades(frame, exchange=EX, symbol=SYM) == 4
    assert store.trades(EX, SYM)["ts"].tolist() == trades(10, 4)["ts"].tolist()


def test_a_batch_breaking_the_contract_writes_nothing(store: OrderFlowStore) -> None:
    good = trades(1, 10).assign(symbol=SYM)
    bad = trades(1, 10).assign(symbol="ETH/USDT")
    bad.loc[4, "ts"] = T0 - 1  # time goes back along the ids
    with pytest.raises(TradesRefused, match="time_non_decreasing 1; first: ts"):
        store.write_trades(pd.concat([good, bad]), exchange=EX)
    assert store.counts()["trades"] == 0


def test_holes_and_time_ranges(store: OrderFlowStore) -> None:
    store.write_trades(pd.concat([trades(1, 10), trades(20, 5)]), exchange=EX, symbol=SYM)
    store.write_trades(trades(40, 1), exchange=EX, symbol=SYM)
    assert store.trade_holes(EX, SYM) == [(11, 19), (25, 39)]
    assert store.trades(EX, SYM, T0 + 30, T0 + 200)["id"].tolist() == [3, 4, 5, 6, 7, 8, 9, 10,
                                                                       20]
    assert store.trades_by_id(EX, SYM, 9, 21)["id"].tolist() == [9, 10, 20, 21]
    assert store.trade_bounds(EX, "SOL/USDT") is None


def snapshots(times: list[int], kind: str = "cadence") -> pd.DataFrame:
    return pd.DataFrame({
        "ts": times, "kind": kind, "update_id": [100 + i for i in range(len(times))],
        "bid_price": [[10.0, 9.5]] * len(times), "bid_amount": [[1.0, 2.0]] * len(times),
        "ask_price": [[10.5]] * len(times), "ask_amount": [[3.0]] * len(times),
    })


def test_book_snapshots_keyed_by_time_and_kind(store: OrderFlowStore) -> None:
    both = pd.concat([snapshots([T0, T0 + 1000]), snapshots([T0 + 1000], "close")])
    assert store.write_book_snapshots(both, exchange=EX, symbol=SYM) == 3
    assert store.write_book_snapshots(both, exchange=EX, symbol=SYM) == 0
    close = store.book_snapshots(EX, SYM, kind="close")
    assert close["ts"].tolist() == [T0 + 1000]
    assert close["bid_price"].iloc[0].tolist() == [10.0, 9.5]
    assert len(store.book_snapshots(EX, SYM, start=T0 + 1)) == 2
    with pytest.raises(ValueError, match="kind 'open' is not one of cadence, close"):
        store.write_book_snapshots(snapshots([T0], "open"), exchange=EX, symbol=SYM)


def test_tickers_keyed_by_time_with_missing_values_null(store: OrderFlowStore) -> None:
    frame = pd.DataFrame({"ts": [T0, T0 + 5, T0 + 5], "bid": [1.0, 1.1, 1.1],
                          "ask": [1.2, 1.3, 1.3], "bid_qty": [3, 4, 4], "ask_qty": [5, 6, 6]})
    assert store.write_tickers(frame, exchange=EX, symbol=SYM) == 2
    got = store.tickers(EX, SYM)
    assert got["ask"].tolist() == [1.2, 1.3] and got["last"].isna().all()


def test_retention_prunes_per_table(store: OrderFlowStore) -> None:
    late = trades(4, 3).assign(ts=lambda d: d["ts"] + 2 * DAY_MS)
    store.write_trades(pd.concat([trades(1, 3), late]), exchange=EX, symbol=SYM)
    store.write_book_snapshots(snapshots([T0, T0 + 2 * DAY_MS]), exchange=EX, symbol=SYM)
    store.write_tickers(pd.DataFrame({"ts": [T0], "last": [1.0]}), exchange=EX, symbol=SYM)
    keep_trades = RetentionSettings(trades_days=None, book_snapshots_days=1, tickers_days=1)
    assert store.prune(keep_trades, T0 + 2 * DAY_MS) == {"book_snapshots": 1, "tickers": 1}
    assert store.counts() == {"trades": 6, "book_snapshots": 1, "tickers": 0}
    store.prune(RetentionSettings(trades_days=1), T0 + 2 * DAY_MS)
    assert store.trades(EX, SYM)["id"].tolist() == [4, 5, 6]


def test_retention_is_configured_per_table(tmp_path: Path) -> None:
    settings = load_settings(overrides={"store": {"retention": {"trades_days": 90}}}, env={})
    assert settings.store.retention.trades_days == 90
    assert settings.store.retention.book_snapshots_days == 30
    with pytest.raises(ConfigError, match="tickers_days"):
        load_settings(overrides={"store": {"retention": {"tickers_days": -1}}}, env={})


def test_candles_and_order_flow_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "market.duckdb"
    with MarketStore(path) as candles, OrderFlowStore(path) as flow:
        assert flow.write_trades(trades(1, 3), exchange=EX, symbol=SYM) == 3
        assert candles.sql("SELECT count(*) AS n FROM trades")["n"].iloc[0] == 3


def test_one_write_stores_every_table_or_nothing(store: OrderFlowStore) -> None:
    ticks = pd.DataFrame({"ts": [T0], "bid": [1.0], "ask": [1.1], "symbol": SYM})
    got = store.write(trades=trades(1, 4).assign(symbol=SYM), tickers=ticks,
                      book_snapshots=snapshots([T0]).assign(symbol="ETH/USDT"), exchange=EX)
    assert got == {"trades": 4, "book_snapshots": 1, "tickers": 1}
    bad = trades(10, 3).assign(price=-1.0)
    with pytest.raises(TradesRefused):
        store.write(trades=bad, tickers=ticks.assign(ts=T0 + 1), exchange=EX, symbol=SYM)
    assert store.counts() == {"trades": 4, "book_snapshots": 1, "tickers": 1}
    assert store.write(exchange=EX, symbol=SYM) == {"trades": 0, "book_snapshots": 0,
                                                    "tickers": 0}


def test_a_ducklake_profile_keeps_order_flow_in_its_own_duckdb_file(tmp_path) -> None:
    from tradeflow.config import load_settings
    from tradeflow.market.orderflow_store import open_orderflow_store

    settings = load_settings(env={"TRADEFLOW_DATA_DIR": str(tmp_path),
                                  "TRADEFLOW_STORE__ENGINE": "ducklake",
                                  "TRADEFLOW_STORE__CATALOG": "dbname=x host=127.0.0.1"})
    store = open_orderflow_store(settings)
    try:
        assert isinstance(store.counts(), dict)
    finally:
        store.close()
    assert (tmp_path / "orderflow.duckdb").is_file()
