"""Training reads the recorded order flow from the market store: same inputs, coverage logged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.features import FeaturePipeline
from models.order_flow import attach
from models.order_flow_data import attach_recorded, coverage_metrics
from models.training import TrainingDataError, load_training_data
from tests.integration.models.test_training_support import strategy_data
from tests.unit.models.order_flow_support import Tape, make_tape
from tradeflow.market.orderflow_store import OrderFlowStore
from tradeflow.market.store import MarketStore
from tradeflow.strategy import StrategySettings

MIN = 60_000
DAY = 86_400_000
FEATURES = [{"name": "returns", "horizons": [1, 5]}, {"name": "trade_vwap", "minutes": 30},
            {"name": "taker_flow"}, {"name": "book_imbalance", "levels": [1, 5]}]


@dataclass
class Recorded:
    tape: Tape
    market: MarketStore
    flow: OrderFlowStore
    trades: pd.DataFrame
    snaps: pd.DataFrame
    strategy: StrategySettings
    end: int


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    tape = make_tape(4 * 1440, seed=2, start_ms=1_700_006_400_000)  # a UTC midnight
    path = tmp_path_factory.mktemp("flow") / "market.duckdb"
    market = MarketStore(path)
    market.upsert(tape.candles, exchange="binance", symbol="BTC/USDT", timeframe="1m")
    flow = OrderFlowStore(path)
    # The recorder ran from day 1 on: no trades and no book before it.
    t = tape.candles["open_time"].to_numpy()
    start = int(t[1440])
    trades = tape.trades[tape.trades["ts"] >= start]
    snaps = tape.snapshots[tape.snapshots["ts"] >= start].assign(kind="close", update_id=1)
    flow.write(trades=trades, book_snapshots=snaps, exchange="binance", symbol="BTC/USDT")

    strategy = StrategySettings.model_validate(strategy_data(
        "flowy", symbols=["BTC/USDT"], features=FEATURES,
        training={"window_days": 3, "folds": 2, "pooled": True},
        promotion={"metric": "sharpe", "min_trades": 1, "max_drawdown_pct": 25,
                   "evaluation_days": 0.5}))
    return Recorded(tape, market, flow, trades, snaps, strategy, int(t[-1]) + MIN)


def test_recorded_order_flow_reaches_training_as_the_frames_give_it(recorded: Recorded) -> None:
    market, flow, strategy, end = recorded.market, recorded.flow, recorded.strategy, recorded.end
    trades, snaps = recorded.trades, recorded.snaps
    with pytest.raises(TrainingDataError, match="order-flow features but no order-flow store"):
        load_training_data(market, "binance", strategy, end)
    data = load_training_data(market, "binance", strategy, end, order_flow=flow)
    pipeline = FeaturePipeline.from_strategy(strategy)
    frame = data.candles["BTC/USDT"]
    assert list(frame.columns[6:]) == list(pipeline.inputs)
    # The same inputs as the frames of the recording give (the store adds nothing, loses
    # nothing), NaN before the recording started: the candle of the first stored trade was
    # not wholly recorded.
    first_trade = int(trades["ts"].iloc[0])
    expected = attach(frame.iloc[:, :6], "1m", pipeline.inputs, trades, snaps,
                      covered=(first_trade, int(trades["ts"].iloc[-1]) + 1))
    np.testing.assert_allclose(frame[list(pipeline.inputs)].to_numpy(),
                               expected[list(pipeline.inputs)].to_numpy(), rtol=1e-12)
    before = frame["open_time"].to_numpy() < first_trade
    assert int(frame["open_time"].iloc[0]) < first_trade and before.any()
    assert frame.loc[before, "trade_qty"].isna().all()
    assert frame.loc[~before, "trade_qty"].notna().all()
    share = float((~before[frame["open_time"].to_numpy() >= data.window.start_ms]).mean())
    assert data.order_flow["data.orderflow.trades_coverage"] == pytest.approx(share)
    assert data.order_flow["data.orderflow.BTC/USDT.book_coverage"] == pytest.approx(
        share, abs=1e-3)  # the book was recorded from the candle the first trade fell in
    assert 0 < share < 1


def test_coverage_is_counted_over_all_symbols_by_candle(tmp_path: Path) -> None:
    tape = make_tape(200, seed=1)
    a = attach(tape.candles, "1m", ("trade_qty",), tape.trades, None)
    b = attach(tape.candles.iloc[:100], "1m", ("trade_qty",), None, None)
    metrics = coverage_metrics({"A": a, "B": b}, int(tape.candles["open_time"].iloc[0]))
    a_share = float(a["trade_qty"].notna().mean())
    assert metrics["data.orderflow.B.trades_coverage"] == 0.0
    assert metrics["data.orderflow.trades_coverage"] == pytest.approx(a_share * 200 / 300)
    empty = attach_recorded(OrderFlowStore(tmp_path / "m.duckdb"), "binance", "1m",
                            {"A": tape.candles}, ("trade_qty", "book_bid_px"))
    assert empty["A"][["trade_qty", "book_bid_px"]].isna().all().all()


def test_a_trained_order_flow_model_logs_coverage_and_serves_the_flow_columns(
        recorded: Recorded, tmp_path: Path) -> None:
    import mlflow
    import mlflow.pyfunc

    from models import registry
    from models.tracking import train_and_log
    from tests.integration.models.test_training_support import write_profile
    from tradeflow.config import load_settings

    settings = load_settings(write_profile(tmp_path, tmp_path / "unused.duckdb",
                                           tmp_path / "mlflow"), env={})
    registry.configure_tracking(settings)
    data = load_training_data(recorded.market, "binance", recorded.strategy, recorded.end,
                              order_flow=recorded.flow)
    result = train_and_log(data, settings, {"end_ms": recorded.end})
    run = mlflow.MlflowClient().get_run(result.run_id)
    metrics, params = run.data.metrics, run.data.params
    assert metrics["data.orderflow.trades_coverage"] == pytest.approx(
        data.order_flow["data.orderflow.trades_coverage"])
    assert "data.orderflow.BTC/USDT.book_coverage" in metrics
    assert params["data.orderflow.inputs"] == ",".join(result.pipeline.inputs)
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    frame = data.candles["BTC/USDT"].iloc[-(result.model.warmup + 5):].assign(
        symbol="BTC/USDT")
    out = loaded.predict(frame)
    expected = result.model.predict_frame(frame)["probability"].to_numpy()
    np.testing.assert_allclose(out["probability"].to_numpy(), expected, rtol=1e-12)
    assert np.isfinite(expected[-5:]).all()
