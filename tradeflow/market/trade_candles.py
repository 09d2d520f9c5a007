"""Candles from trades, and the check that stored candles agree with stored trades.

An exchange's kline is an aggregate of the trades that printed in it: the first trade's price
opens it, the last one's closes it, the extremes are its high and low, volume and quote volume
are the sums of amount and price x amount, ``trades`` counts them and the taker-buy volumes sum
the trades whose taker bought. :func:`candles_from_trades` computes exactly these, vectorised
(one sort, then reductions over the runs of one candle), so candles can be rebuilt from a
trade tape and stored candles checked against it (:func:`trades_vs_candles`, the validation
rule ``trades_vs_candles``).

Prices and counts must agree exactly. Sums are compared with a relative tolerance of
:data:`SUM_RTOL`: the exchange adds decimals, we add the nearest doubles, which can differ in
the last bits (a real disagreement - a missing or doubled trade - is many orders larger).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.contracts.rules import grid_offset
from tradeflow.market.store import MarketStore, SeriesKey

TRADE_COLUMNS = ("id", "ts", "price", "amount", "side")
TRADE_CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume",
                        "trades", "taker_buy_base", "taker_buy_quote")
EXACT_FIELDS = ("open", "high", "low", "close", "trades")
SUM_FIELDS = ("volume", "quote_volume", "taker_buy_base", "taker_buy_quote")
SUM_RTOL = 1e-9


def candle_open_times(ts: np.ndarray, timeframe: str) -> np.ndarray:
    """The open time of the candle holding each trade time (UTC ms)."""
    ts = np.asarray(ts, dtype=np.int64)
    return ts - grid_offset(ts, timeframe)


def candles_from_trades(trades: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """One candle per ``timeframe`` interval that holds trades (intervals without any get no
    row), with :data:`TRADE_CANDLE_COLUMNS`, ascending.

    ``trades`` has ``id``, ``ts`` (UTC ms), ``price``, ``amount`` and ``side`` (the taker's,
    ``buy`` or ``sell``). Trades are taken in id order, the order the exchange matched them.
    """
    timeframes.parse(timeframe)
    ids = trades["id"].to_numpy(dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    ts = trades["ts"].to_numpy(dtype=np.int64)[order]
    price = trades["price"].to_numpy(dtype=np.float64)[order]
    amount = trades["amount"].to_numpy(dtype=np.float64)[order]
    buy = (trades["side"].to_numpy() == "buy")[order]
    opens = candle_open_times(ts, timeframe)
    if opens.size > 1 and bool((opens[1:] < opens[:-1]).any()):
        # a trade stamped before one matched earlier: keep id order inside each candle
        regroup = np.argsort(opens, kind="stable")
        opens, price, amount, buy = opens[regroup], price[regroup], amount[regroup], buy[regroup]
    if not opens.size:
        return pd.DataFrame({c: np.empty(0, dtype=np.int64 if c in ("open_time", "trades")
                                         else np.float64) for c in TRADE_CANDLE_COLUMNS})
    starts = np.concatenate([[0], np.flatnonzero(opens[1:] != opens[:-1]) + 1])
    ends = np.concatenate([starts[1:], [opens.size]])
    quote = price * amount
    return pd.DataFrame({
        "open_time": opens[starts],
        "open": price[starts],
        "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts),
        "close": price[ends - 1],
        "volume": np.add.reduceat(amount, starts),
        "quote_volume": np.add.reduceat(quote, starts),
        "trades": (ends - starts).astype(np.int64),
        "taker_buy_base": np.add.reduceat(np.where(buy, amount, 0.0), starts),
        "taker_buy_quote": np.add.reduceat(np.where(buy, quote, 0.0), starts),
    })


def judged_span(trades: pd.DataFrame, timeframe: str) -> tuple[int, int] | None:
    """First and last open time of the candles that lie wholly between the first and the last
    stored trade (a candle at either edge may hold trades from before or after them)."""
    if trades.empty:
        return None
    ts = trades["ts"].to_numpy(dtype=np.int64)
    first, last = int(ts.min()), int(ts.max())
    start = timeframes.floor(first, timeframe)
    if start < first:
        start = timeframes.next_open(start, timeframe)
    end = timeframes.previous_open(timeframes.floor(last, timeframe), timeframe)
    return (start, end) if start <= end else None


def trades_vs_candles(candles: pd.DataFrame, trades: pd.DataFrame,
                      timeframe: str) -> np.ndarray:
    """Per stored candle: 1.0 when it disagrees with the aggregate of the stored trades, 0.0
    when it agrees, NaN when the trades do not cover it (not judged).

    ``candles`` has ``open_time`` and whichever of :data:`TRADE_CANDLE_COLUMNS` the source
    delivered (a missing or NULL column is not compared). A candle with no trade in it agrees
    when it traded nothing (volume 0, or no volume known and no count).
    """
    times = candles["open_time"].to_numpy(dtype=np.int64)
    verdict = np.full(times.size, np.nan)
    span = judged_span(trades, timeframe)
    if span is None or not times.size:
        return verdict
    judged = (times >= span[0]) & (times <= span[1])
    if not judged.any():
        return verdict
    built = candles_from_trades(trades, timeframe)
    at = np.searchsorted(built["open_time"].to_numpy(), times)
    at = np.minimum(at, max(len(built) - 1, 0))
    has = (built["open_time"].to_numpy()[at] == times) if len(built) else np.zeros(times.size,
                                                                                   bool)
    bad = np.zeros(times.size, dtype=bool)
    for field in (*EXACT_FIELDS, *SUM_FIELDS):
        if field not in candles.columns:
            continue
        stored = candles[field].to_numpy(dtype=np.float64, na_value=np.nan)
        known = ~np.isnan(stored)
        if field in ("open", "high", "low", "close"):
            # an empty interval's prices are the previous close: nothing to compare
            bad |= known & has & (stored != built[field].to_numpy(np.float64)[at])
            continue
        ours = np.where(has, built[field].to_numpy(np.float64)[at], 0.0)
        if field == "trades":
            bad |= known & (stored != ours)
        else:
            bad |= known & ~np.isclose(stored, ours, rtol=SUM_RTOL, atol=0.0)
    verdict[judged] = bad[judged].astype(np.float64)
    return verdict


def read_trades(store: MarketStore, exchange: str, symbol: str, start_ms: int,
                end_ms: int) -> pd.DataFrame:
    """Stored trades of one series with times in [start_ms, end_ms], ascending by id (none
    when the store has no trades table: a file of an older release opened read-only)."""
    has_table = store.sql("SELECT count(*) AS n FROM information_schema.tables "
                          "WHERE table_name = 'trades'")["n"].iloc[0]
    if not has_table:
        return pd.DataFrame({c: [] for c in TRADE_COLUMNS})
    # the same statement as OrderFlowStore.trades, on the connection validation already holds
    return store.sql(
        "SELECT id, epoch_ms(ts) AS ts, price, amount, side FROM trades WHERE exchange = ? "
        "AND symbol = ? AND ts >= make_timestamp(? * 1000) AND ts <= make_timestamp(? * 1000) "
        "ORDER BY id", [exchange, symbol, start_ms, end_ms])


def stored_verdicts(store: MarketStore, key: SeriesKey, start: int, end: int) -> pd.DataFrame:
    """``open_time`` and ``trades_mismatch`` (see :func:`trades_vs_candles`) of the stored
    candles of ``key`` opening in [start, end], judged against the stored trades."""
    tf = key.timeframe
    trades = read_trades(store, key.exchange, key.symbol, timeframes.previous_open(start, tf),
                         timeframes.next_open(timeframes.next_open(end, tf), tf) - 1)
    if trades.empty:
        return pd.DataFrame({"open_time": np.empty(0, np.int64),
                             "trades_mismatch": np.empty(0, np.float64)})
    candles = store.read(key, start, end, columns=("open_time", *TRADE_CANDLE_COLUMNS[1:]))
    return pd.DataFrame({"open_time": candles["open_time"].to_numpy(dtype=np.int64),
                         "trades_mismatch": trades_vs_candles(candles, trades, tf)})
