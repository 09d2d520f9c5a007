"""The look-ahead check passes causal targets and catches leaky ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.backtest.lookahead import check_backtest_lookahead
from tradeflow.strategy import CostSettings, ExitSettings, SlippageSettings


def candles(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    opens = np.r_[100, close[:-1]]
    return pd.DataFrame({"open_time": np.arange(n, dtype=np.int64) * 60_000, "open": opens,
                         "high": np.maximum(opens, close) * 1.002,
                         "low": np.minimum(opens, close) * 0.998, "close": close})


def crossover(c: pd.DataFrame) -> np.ndarray:
    fast = c["close"].rolling(5).mean()
    slow = c["close"].rolling(20).mean()
    return np.where(fast > slow, 1.0, 0.0)


def peeks_one_candle(c: pd.DataFrame) -> np.ndarray:
    nxt = c["close"].shift(-1)
    return np.where(nxt > c["close"], 1.0, 0.0)


def full_sample_zscore(c: pd.DataFrame) -> np.ndarray:
    z = (c["close"] - c["close"].mean()) / c["close"].std()
    return np.where(z > 0, 0.5, 0.0)


def test_causal_target_and_engine_pass() -> None:
    costs = CostSettings(taker_bps=10, maker_bps=2, slippage=SlippageSettings(
        kind="volatility", bps=1, volatility_multiplier=0.3, volatility_window=15))
    report = check_backtest_lookahead(candles(), crossover, costs=costs,
                             exits=ExitSettings(stop_loss_pct=1, trailing_stop_pct=1.5))
    assert report.ok, report.describe()
    assert len(report.prefixes) == 8
    assert "no look-ahead" in report.describe()


def test_leaky_targets_are_reported() -> None:
    peek = check_backtest_lookahead(candles(), peeks_one_candle)
    assert not peek.ok
    # Only the last decision of a prefix can change (it needed the next close), and it does
    # whenever that close went up.
    assert set(peek.target_mismatches) <= {k - 1 for k in peek.prefixes}
    assert len(peek.target_mismatches) >= 3
    zscore = check_backtest_lookahead(candles(), full_sample_zscore)
    assert len(zscore.target_mismatches) > 10
    assert "LOOK-AHEAD" in zscore.describe()
