"""`tradeflow check-lookahead`: the example strategy passes; leaks planted in tests are caught.

The leaks live only here (never in the feature registry): a compute function wrapped to add
the next candle's close as a column, and one whose probability reads the close ten candles
ahead, which also moves the target positions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from models.estimators import MOMENTUM_COLUMN
from models.features import FeaturePipeline
from models.research import SymbolCheck, baseline_model, check_symbol, signal_compute
from tests.integration.cli.test_backtest import EXAMPLE, Market, build_market, run_cli
from tradeflow import timeframes
from tradeflow.backtest.engine import strategy_targets

Compute = Callable[[pd.DataFrame], pd.DataFrame]
SYMBOL = "ETH/USDT"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    return build_market(tmp_path_factory.mktemp("lookahead"))


def check(market: Market, wrap: Callable[[Compute], Compute] | None = None) -> SymbolCheck:
    """The plain check of one symbol with the momentum baseline, its compute optionally wrapped."""
    strategy = market.strategy
    model = baseline_model("momentum", strategy, market.candles)
    compute = signal_compute(model.model, strategy, SYMBOL)
    return check_symbol(SYMBOL, market.candles[SYMBOL], wrap(compute) if wrap else compute,
                        strategy, samples=8, start=model.warmup)


def next_close(compute: Compute) -> Compute:
    def leaky(candles: pd.DataFrame) -> pd.DataFrame:
        out = compute(candles)
        out["leak_next_close"] = candles["close"].shift(-1).to_numpy()
        return out

    return leaky


def test_example_strategy_features_and_signal_pass_on_the_cli(market: Market) -> None:
    proc = run_cli(market, "check-lookahead", "--strategy", str(EXAMPLE), "--model", "momentum",
                   "--samples", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    out = proc.stdout
    for symbol in market.strategy.symbols:
        assert re.search(rf"^{re.escape(symbol)}: 10 sample points .*: identical$", out, re.M)
    summary = re.search(r"^no look-ahead: 3 symbol\(s\), 30 sample points, (\d+) feature "
                        r"columns \((.*)\) and signal columns probability, target", out, re.M)
    assert summary, out
    # Every column of every feature family the example strategy declares was compared.
    columns = FeaturePipeline.from_strategy(market.strategy).columns + (MOMENTUM_COLUMN,)
    assert summary.group(2).split(", ") == list(columns)
    assert int(summary.group(1)) == len(columns)


def test_the_unwrapped_signal_passes_on_the_same_candles(market: Market) -> None:
    result = check(market)
    assert result.ok, "\n".join(result.lines())
    assert result.columns.columns[-2:] == ("probability", "target")
    assert len(result.columns.checked_rows) == 8 and len(result.decisions.prefixes) == 8
    # Not vacuous: the baseline enters and leaves positions over these candles.
    model = baseline_model("momentum", market.strategy, market.candles)
    target = signal_compute(model.model, market.strategy, SYMBOL)(market.candles[SYMBOL])
    assert np.count_nonzero(np.diff(np.nan_to_num(target["target"].to_numpy()))) > 20


def test_a_next_close_column_is_caught_and_named(market: Market) -> None:
    result = check(market, next_close)
    assert not result.ok
    assert result.columns.biased_columns == ("leak_next_close",)
    assert result.decisions.ok  # the leak does not reach the decisions
    diff = result.columns.differences[0]
    frame = market.candles[SYMBOL]
    assert diff.full == frame["close"].iloc[diff.row + 1] and np.isnan(diff.truncated)
    assert diff.open_time == frame["open_time"].iloc[diff.row]
    lines = result.lines()
    assert lines[0].endswith("LOOK-AHEAD")
    assert lines[1].startswith(f"  leak_next_close: at {timeframes.iso(diff.open_time)}")
    assert "full history gives" in lines[1] and "history ending there gives nan" in lines[1]


def test_a_signal_reading_the_future_is_caught_in_probability_and_decisions(
        market: Market) -> None:
    strategy = market.strategy

    def peeking(compute: Compute) -> Compute:
        def leaky(candles: pd.DataFrame) -> pd.DataFrame:
            out = compute(candles)
            ahead = candles["close"].shift(-10).to_numpy()
            up = np.where(np.isnan(ahead), np.nan, (ahead > candles["close"].to_numpy()) * 1.0)
            proba = np.where(np.isnan(out["probability"].to_numpy()), np.nan, up)
            out["probability"] = proba
            out["target"] = strategy_targets(candles, proba, strategy)
            return out

        return leaky

    result = check(market, peeking)
    assert {"probability", "target"} <= set(result.columns.biased_columns)
    assert result.decisions.target_mismatches
    # The prefixes are backtested with the full run's targets: the fill, cost and exit model is
    # causal, so the equity agrees and only the decisions are flagged.
    assert not result.decisions.equity_mismatches
    first = timeframes.iso(int(result.open_time[result.decisions.target_mismatches[0]]))
    text = "\n".join(result.lines())
    assert "  probability: at " in text and "  target: at " in text
    assert f"change when later candles are removed, first at {first}" in text
