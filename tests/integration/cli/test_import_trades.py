"""`tradeflow import` of Binance Vision trades and aggTrades dumps: the trades table holds
exactly the exchange's trades, a re-import adds nothing, a bad file stores nothing of itself
and is one line while the others import, candles rebuilt from the stored trades are the
exchange's klines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulator.market import MINUTE_MS
from tests.fixtures.simulator import START_MS, frozen_venue
from tests.fixtures.tape import exchange_klines, exchange_trades
from tests.integration.cli.test_import import cli
from tests.unit.tradeflow.market.test_trade_import import csv_lines, sim_rows, write_dump
from tradeflow.market.orderflow_store import OrderFlowStore
from tradeflow.market.trade_candles import candles_from_trades

T0 = START_MS - 3 * 60 * MINUTE_MS


def test_trade_dumps_store_exactly_the_exchanges_trades(tmp_path: Path) -> None:
    store = tmp_path / "data" / "market.duckdb"
    store.parent.mkdir()
    dumps = tmp_path / "vision"
    (dumps / "spot").mkdir(parents=True)
    (dumps / "futures" / "um").mkdir(parents=True)
    rows = sim_rows("trades", 20)
    half = len(rows) // 2
    write_dump(dumps / "spot", "ETHUSDT-trades-2025-12-30.zip", csv_lines("trades", rows[:half]))
    write_dump(dumps / "spot", "ETHUSDT-trades-2025-12-31.zip",
               csv_lines("trades", rows[half:], us=True))
    write_dump(dumps / "futures" / "um", "ETHUSDT-aggTrades-2025-12-31.zip",
               csv_lines("aggTrades", sim_rows("aggTrades", 20), futures=True, header=True))
    broken = csv_lines("trades", rows[:50])
    broken[20] = broken[20].replace(",", ";", 1)
    write_dump(dumps / "spot", "SOLUSDT-trades-2025-12-31.zip", broken)

    first = cli(store, str(dumps))
    assert first.returncode == 1, first.stderr
    lines = first.stdout.splitlines()
    assert sum(line.startswith("imported ") for line in lines) == 3
    failed = [line for line in lines if line.startswith("FAILED ")]
    assert len(failed) == 1 and "SOLUSDT-trades-2025-12-31.zip, line 21" in failed[0]
    assert lines[-1].startswith("3 of 4 files imported")
    assert f"{half:,} trades ETH/USDT" in first.stdout and "times in us" in first.stdout
    assert "Binance Vision aggTrades" in first.stdout and "Traceback" not in first.stderr

    venue = frozen_venue()
    end = T0 + 20 * MINUTE_MS - 1
    with OrderFlowStore(store, read_only=True) as flow:
        spot = flow.trades("binance", "ETH/USDT")
        perp = flow.trades("binance", "ETH/USDT:USDT")
        assert flow.trades("binance", "SOL/USDT").empty
    pd.testing.assert_frame_equal(spot, exchange_trades(venue, "ETH/USDT", T0, end),
                                  check_dtype=False)
    agg = sim_rows("aggTrades", 20)
    assert perp["id"].tolist() == [r["f"] for r in agg]
    assert np.isclose(perp["amount"].sum(), spot["amount"].sum(), rtol=1e-12, atol=0)
    # the stored trades rebuild the exchange's klines (aggTrades: all but the count)
    klines = exchange_klines(venue, "ETH/USDT", "1m", T0, end)
    for trades, fields in ((spot, ["open", "high", "low", "close", "trades"]),
                           (perp, ["open", "high", "low", "close"])):
        built = candles_from_trades(trades, "1m")
        assert (built[["open_time", *fields]].to_numpy() ==
                klines[["open_time", *fields]].to_numpy()).all()

    again = cli(store, str(dumps / "spot"), str(dumps / "futures"))
    assert again.stdout.count(" 0 new;") == 3
    with OrderFlowStore(store, read_only=True) as flow:
        assert flow.duplicate_trades() == 0
        assert flow.counts()["trades"] == len(spot) + len(perp)
