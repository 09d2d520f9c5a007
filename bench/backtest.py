"""Benchmark: tradeflow's backtester against vectorbt's ``Portfolio.from_signals``.

Both run the same random entry/exit signals on the same synthetic 1m random walk with the same
fees and slippage (vectorbt gets the signals shifted by one bar and ``price=open``, so both fill
at the next open). Measured in one run:

* single symbol, 1M candles: our ``run_backtest`` (full result: metrics, trades, equity) and
  vectorbt's ``from_signals``; first call and best warm call of each; ratio ours / vectorbt.
* 10 symbols x 1M candles with shared cash: ``run_portfolio`` against vectorbt with
  ``cash_sharing=True, group_by=True``.
* numba compile time with an empty cache (a child process with a fresh ``NUMBA_CACHE_DIR``)
  and the time to load the cache, for both libraries.

Usage: ``.venv/bin/python bench/backtest.py [--candles N] [--symbols K] [--repeat R] [--no-cold]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Run as a script, bench/ comes first on sys.path, and bench/ holds scripts named like the
# project's packages (bench/simulator.py would shadow the simulator package).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

GOAL = 1.5
FEES, SLIPPAGE, CASH = 0.001, 0.0002, 10_000.0


def random_walk(n: int, seed: int) -> pd.DataFrame:
    """1m candles of a geometric random walk with small gaps at the opens."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    opens = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.0002, n))
    wick = np.abs(rng.normal(0, 0.0005, (2, n)))
    return pd.DataFrame({
        "open_time": np.arange(n, dtype=np.int64) * 60_000, "open": opens,
        "high": np.maximum(opens, close) * (1 + wick[0]),
        "low": np.minimum(opens, close) * (1 - wick[1]), "close": close,
        "volume": np.ones(n),
    })


def random_signals(n: int, seed: int, p: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n) < p, rng.random(n) < p


def to_target(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    return np.where(entries & ~exits, 1.0, np.where(exits & ~entries, 0.0, np.nan))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first call, best of the next ``repeat`` calls, last result)."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return first, best, out


def _vbt_frame(values: np.ndarray, index: pd.DatetimeIndex, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values, index=index, columns=columns)


def single_symbol(n: int, repeat: int) -> dict[str, float]:
    import vectorbt as vbt

    from tradeflow.backtest.engine import run_backtest
    from tradeflow.strategy import CostSettings, ExitSettings, SlippageSettings, TakeProfitTier

    candles = random_walk(n, 0)
    entries, exits = random_signals(n, 1)
    costs = CostSettings(taker_bps=FEES * 1e4, maker_bps=FEES * 1e4,
                         slippage=SlippageSettings(bps=SLIPPAGE * 1e4))
    target = to_target(entries, exits)
    idx = pd.date_range("2020-01-01", periods=n, freq="1min")
    close = pd.Series(candles["close"].to_numpy(), index=idx)
    price = pd.Series(candles["open"].to_numpy(), index=idx)
    ent = pd.Series(np.r_[False, entries[:-1]], index=idx)
    ext = pd.Series(np.r_[False, exits[:-1]], index=idx)

    def ours() -> Any:
        return run_backtest(candles, target, costs=costs)

    def theirs() -> Any:
        return vbt.Portfolio.from_signals(close, ent, ext, price=price, size=np.inf, fees=FEES,
                                          slippage=SLIPPAGE, init_cash=CASH, freq="1min")

    exits = ExitSettings(stop_loss_pct=1, trailing_stop_pct=1.5, max_holding_candles=240,
                         take_profit=(TakeProfitTier(pct=1, fraction=0.5),
                                      TakeProfitTier(pct=2, fraction=0.5)))

    def ours_with_exits() -> Any:
        return run_backtest(candles, target, costs=costs, exits=exits)

    o_first, o_best, result = timed(ours, repeat)
    v_first, v_best, pf = timed(theirs, repeat)
    _, x_best, _ = timed(ours_with_exits, repeat)
    return {
        "ours_first": o_first, "ours_warm": o_best, "vbt_first": v_first, "vbt_warm": v_best,
        "ours_exits_warm": x_best,
        "ours_final": result.metrics.final_equity, "vbt_final": float(pf.final_value()),
        "ours_trades": len(result.trades), "vbt_trades": int(pf.trades.count()),
    }


def portfolio(n: int, k: int, repeat: int) -> dict[str, float]:
    import vectorbt as vbt

    from tradeflow.backtest.portfolio import run_portfolio
    from tradeflow.strategy import CostSettings, SlippageSettings

    symbols = [f"S{i}/USDT" for i in range(k)]
    frames = {s: random_walk(n, 10 + i) for i, s in enumerate(symbols)}
    signals = {s: random_signals(n, 100 + i) for i, s in enumerate(symbols)}
    targets = {s: to_target(*signals[s]) for s in symbols}
    costs = CostSettings(taker_bps=FEES * 1e4, maker_bps=FEES * 1e4,
                         slippage=SlippageSettings(bps=SLIPPAGE * 1e4))
    idx = pd.date_range("2020-01-01", periods=n, freq="1min")

    def stack(fn: Callable[[str], np.ndarray]) -> pd.DataFrame:
        return _vbt_frame(np.column_stack([fn(s) for s in symbols]), idx, symbols)

    close = stack(lambda s: frames[s]["close"].to_numpy())
    price = stack(lambda s: frames[s]["open"].to_numpy())
    ent = stack(lambda s: np.r_[False, signals[s][0][:-1]])
    ext = stack(lambda s: np.r_[False, signals[s][1][:-1]])

    def ours() -> Any:
        return run_portfolio(frames, targets, costs=costs)

    def theirs() -> Any:
        return vbt.Portfolio.from_signals(close, ent, ext, price=price, size=np.inf, fees=FEES,
                                          slippage=SLIPPAGE, init_cash=CASH, cash_sharing=True,
                                          group_by=True, freq="1min")

    o_first, o_best, result = timed(ours, repeat)
    v_first, v_best, pf = timed(theirs, repeat)
    return {
        "ours_first": o_first, "ours_warm": o_best, "vbt_first": v_first, "vbt_warm": v_best,
        "ours_trades": len(result.trades), "vbt_trades": int(pf.trades.count().sum()),
    }


_COLD_SNIPPET = """
import json, sys, time
import numpy as np, pandas as pd
which = sys.argv[1]
n = 500
rng = np.random.default_rng(0)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
frame = pd.DataFrame({"open_time": np.arange(n, dtype=np.int64) * 60_000, "open": close,
                      "high": close, "low": close, "close": close})
entries, exits = rng.random(n) < 0.05, rng.random(n) < 0.05
t0 = time.perf_counter()
if which == "ours":
    from tradeflow.backtest.engine import run_backtest
    from tradeflow.strategy import ExitSettings
    t0 = time.perf_counter()
    target = np.where(entries, 1.0, np.where(exits, 0.0, np.nan))
    run_backtest(frame, target, exits=ExitSettings(stop_loss_pct=1))
else:
    import vectorbt as vbt
    t0 = time.perf_counter()
    vbt.Portfolio.from_signals(pd.Series(close), pd.Series(entries), pd.Series(exits),
                               price=pd.Series(close), size=np.inf, fees=0.001)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def compile_times() -> dict[str, float]:
    """First-call time in fresh processes: with an empty numba cache, then with it filled."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for which in ("ours", "vbt"):
            for label in ("cold", "cached"):
                proc = subprocess.run([sys.executable, "-c", _COLD_SNIPPET, which], env=env,
                                      capture_output=True, text=True, check=True)
                out[f"{which}_{label}"] = json.loads(proc.stdout.strip().splitlines()[-1])[
                    "seconds"]
    return out


def report(title: str, r: dict[str, float]) -> None:
    ratio = r["ours_warm"] / r["vbt_warm"]
    print(f"\n== {title} ==")
    print(f"  tradeflow   first call {r['ours_first'] * 1e3:9.1f} ms | "
          f"warm (best) {r['ours_warm'] * 1e3:8.1f} ms")
    print(f"  vectorbt    first call {r['vbt_first'] * 1e3:9.1f} ms | "
          f"warm (best) {r['vbt_warm'] * 1e3:8.1f} ms")
    verdict = "OK" if ratio <= GOAL else "ABOVE GOAL"
    print(f"  ratio tradeflow / vectorbt (warm): {ratio:.2f}  (goal <= {GOAL}: {verdict})")
    print(f"  trades: tradeflow {r['ours_trades']}, vectorbt {r['vbt_trades']}")
    if "ours_exits_warm" in r:
        print(f"  tradeflow with stop, 2 take-profit tiers, trailing stop, max holding: "
              f"{r['ours_exits_warm'] * 1e3:.1f} ms warm (no vectorbt equivalent)")
    if "ours_final" in r:
        rel = abs(r["ours_final"] / r["vbt_final"] - 1)
        print(f"  final equity: tradeflow {r['ours_final']:.6f}, vectorbt {r['vbt_final']:.6f}"
              f" (relative difference {rel:.1e})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the compile-time children")
    args = parser.parse_args(argv)
    print(f"backtest benchmark: {args.candles:,} 1m candles, fees {FEES:.2%}, "
          f"slippage {SLIPPAGE:.2%}, size=all-in, python {sys.version.split()[0]}")
    report(f"single symbol, {args.candles:,} candles", single_symbol(args.candles, args.repeat))
    report(f"portfolio, {args.symbols} symbols x {args.candles:,} candles, shared cash",
           portfolio(args.candles, args.symbols, args.repeat))
    if not args.no_cold:
        c = compile_times()
        print("\n== numba compile (fresh process, 500 candles, imports excluded) ==")
        for name, key in (("tradeflow", "ours"), ("vectorbt ", "vbt")):
            print(f"  {name}   empty cache {c[key + '_cold']:6.2f} s | "
                  f"cached {c[key + '_cached']:6.2f} s")


if __name__ == "__main__":
    main()
