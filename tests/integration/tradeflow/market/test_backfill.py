"""Backfill against the real simulator through ccxt: faults, outages, kills, concurrency."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow import timeframes
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.market.backfill import EMPTY_TWICE, Window, backfill_many
from tradeflow.market.store import MarketStore, SeriesKey

ROOT = Path(__file__).resolve().parents[4]
MIN = 60_000
DAY = 86_400_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def keys(*timeframes_: str) -> list[SeriesKey]:
    return [SeriesKey("binance", s, tf) for s in SYMBOLS for tf in timeframes_]


async def backfill(base_url: str, store: MarketStore, series: list[SeriesKey], days: float,
                   **exchange: Any) -> list[Any]:
    settings = ExchangeSettings(base_url=base_url, retry_base_delay_s=0.05, **exchange)
    async with ExchangeClient(settings) as client:
        now = await client.fetch_time()
        return await backfill_many(client, store, series, Window(now - int(days * DAY)), now,
                                   empty_retry_delay=0.05)


def table(store: MarketStore) -> pd.DataFrame:
    return store.sql("SELECT exchange, symbol, timeframe, open_time, open, high, low, close, "
                     "volume, quote_volume, trades FROM candles ORDER BY ALL")


def test_faults_and_outage_leave_no_duplicate_and_only_the_outage_missing(
    sim_factory: SimFactory,
) -> None:
    sim = sim_factory(history_days=2.0)
    now = sim.now_ms()
    outage = (timeframes.floor(now - DAY, "1m"), timeframes.floor(now - DAY, "1m") + 44 * MIN)
    sim.add_outage(*outage)
    # Every kind of fault, several times per series; each retry hits the next counter.
    sim.set_faults(rate_limit_every=13, retry_after_s=0.2, error_5xx_every=17,
                   truncate_every=19, timeout_every=23, timeout_s=2.0)
    store = MarketStore(":memory:")
    reports = run(backfill(sim.base_url, store, keys("1m", "5m"), 1.5, timeout_ms=1000))
    assert [r.status for r in reports] == ["ok"] * 6, [r.error for r in reports]
    assert store.duplicate_count() == 0
    for report in reports:
        assert report.missing == 0, report
        gaps = store.unfillable(report.key)
        tf = report.key.timeframe
        # The outage appears exactly once per series, as the grid candles it swallowed.
        assert len(gaps) == 1 and gaps[0].reason == EMPTY_TWICE
        assert timeframes.floor(outage[0], tf) <= gaps[0].start_time
        assert gaps[0].end_time < outage[1]
        assert report.unfillable == gaps[0].missing > 0
    stats = sim.set_faults()  # reset: the retry-heavy run is over
    assert stats is not None
    again = run(backfill(sim.base_url, store, keys("1m", "5m"), 1.5))
    assert all(r.pages <= 1 for r in again), [r.pages for r in again]
    assert all(len(store.unfillable(r.key)) == 1 for r in again)


def test_pair_listed_after_the_start_begins_at_its_first_candle(sim_factory: SimFactory) -> None:
    sim = sim_factory(history_days=2.0, listing_delays_days={"SOL/USDT": 1.25})
    store = MarketStore(":memory:")
    reports = run(backfill(sim.base_url, store, keys("1m"), 2.0))
    sol = next(r for r in reports if r.key.symbol == "SOL/USDT")
    btc = next(r for r in reports if r.key.symbol == "BTC/USDT")
    assert sol.first - btc.first >= int(1.2 * DAY)
    assert sol.missing == 0 and store.listed_from(sol.key) == sol.first
    assert all(r.pages <= 1 for r in run(backfill(sim.base_url, store, keys("1m"), 2.0)))


def test_never_stores_the_open_candle(sim_factory: SimFactory) -> None:
    sim = sim_factory(history_days=1.0)
    store = MarketStore(":memory:")
    reports = run(backfill(sim.base_url, store, keys("1m", "1h"), 0.5))
    now = sim.now_ms()
    for r in reports:
        assert r.last == timeframes.last_closed_open(now, r.key.timeframe) or (
            # a candle may have closed between the backfill and this line
            r.last == timeframes.previous_open(
                timeframes.last_closed_open(now, r.key.timeframe), r.key.timeframe))


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "backfill",
                             "--no-progress", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def cli_env(base_url: str, store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_EXCHANGE__BASE_URL=base_url, TRADEFLOW_STORE__PATH=str(store),
               TRADEFLOW_SYMBOLS="BTC/USDT,ETH/USDT", TRADEFLOW_TIMEFRAMES="1m,5m")
    return env


@pytest.mark.slow
def test_killed_run_then_rerun_equals_an_uninterrupted_run(sim_factory: SimFactory,
                                                           tmp_path: Path) -> None:
    # The clock stands still so both runs see the same last closed candle.
    sim = sim_factory(history_days=3.0, speed=1e-9)
    sim.set_faults(latency_ms=150)  # slow enough to be killed mid-way, also on a busy machine
    killed, clean = tmp_path / "killed.duckdb", tmp_path / "clean.duckdb"
    proc = cli(cli_env(sim.base_url, killed), "--days", "3")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some pages are stored, then kill -9
        time.sleep(0.05)
        if killed.exists() and killed.stat().st_size > 300_000:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = MarketStore(killed, read_only=True)
    stored = len(table(partial))
    partial.close()
    assert 0 < stored < 2 * 3 * 1440 * 1.2, "the kill should land mid-backfill"
    sim.set_faults(latency_ms=0)
    for path in (killed, clean):
        done = cli(cli_env(sim.base_url, path), "--days", "3")
        out, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
    a, b = MarketStore(killed, read_only=True), MarketStore(clean, read_only=True)
    pd.testing.assert_frame_equal(table(a), table(b))
    assert a.duplicate_count() == 0


@pytest.mark.slow
def test_a_reader_in_another_process_never_fails_during_a_backfill(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=3.0)
    sim.set_faults(latency_ms=10)
    path = tmp_path / "shared.duckdb"
    MarketStore(path).close()  # create the schema first
    reader = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from tradeflow.market.store import MarketStore\n"
            "store = MarketStore(sys.argv[1], read_only=True)\n"
            "reads, end = 0, time.monotonic() + float(sys.argv[2])\n"
            "while time.monotonic() < end:\n"
            "    store.sql('SELECT count(*) FROM candles'); reads += 1\n"
            "print(reads)\n"
        ), str(path), "8"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    writer = cli(cli_env(sim.base_url, path), "--days", "3")
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=60)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    assert int(r_out.strip()) > 10


def test_cli_reports_unknown_symbol_failed_and_others_complete(sim_factory: SimFactory,
                                                               tmp_path: Path) -> None:
    sim = sim_factory(history_days=1.0)
    env = cli_env(sim.base_url, tmp_path / "m.duckdb")
    env["TRADEFLOW_SYMBOLS"] = "BTC/USDT,NOPE/USDT"
    env["TRADEFLOW_TIMEFRAMES"] = "1h"
    proc = cli(env, "--days", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert ("FAILED NOPE/USDT 1h: unknown symbol: binance does not have market symbol "
            "NOPE/USDT") in out
    assert "BTC/USDT 1h     ok" in out or "BTC/USDT 1h" in out
    assert "Traceback" not in err


def test_cli_recheck_unfillable_fills_an_outage_the_exchange_has_since_published(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(history_days=1.0)
    start = timeframes.floor(sim.now_ms() - DAY // 2, "1m")
    sim.add_outage(start, start + 30 * MIN)  # end exclusive: 30 candles
    env = cli_env(sim.base_url, tmp_path / "m.duckdb")
    env["TRADEFLOW_SYMBOLS"], env["TRADEFLOW_TIMEFRAMES"] = "BTC/USDT", "1m"
    out, err = cli(env, "--days", "0.75").communicate(timeout=120)
    key = SeriesKey("binance", "BTC/USDT", "1m")
    with MarketStore(tmp_path / "m.duckdb") as store:
        assert [(g.start_time, g.missing) for g in store.unfillable(key)] == [(start, 30)], err
    sim.set_faults(outages=())  # the exchange now has the candles
    proc = cli(env, "--days", "0.75", "--recheck-unfillable")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "asking again for 1 gap(s) recorded as unfillable" in err
    with MarketStore(tmp_path / "m.duckdb") as store:
        assert store.unfillable(key) == []
        assert len(store.read(key, start, start + 29 * MIN)) == 30
        assert store.duplicate_count() == 0


@pytest.mark.slow
def test_cli_runs_on_dask_worker_processes_when_the_profile_says_so(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(history_days=1.0)
    env = cli_env(sim.base_url, tmp_path / "m.duckdb")
    env.update(TRADEFLOW_SYMBOLS="BTC/USDT,ETH/USDT,SOL/USDT", TRADEFLOW_TIMEFRAMES="1m",
               TRADEFLOW_BACKFILL__TASK_RUNNER="dask", TRADEFLOW_BACKFILL__DASK_WORKERS="2",
               TRADEFLOW_BACKFILL__CONCURRENCY="2")
    proc = cli(env, "--days", "0.5")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "backfill of 3 series on Dask (a local cluster of 2 processes)" in err
    assert "[3/3]" in err and "Traceback" not in err, err
    assert "INFO" not in err, err  # distributed's chatter stays out of the progress lines
    assert " candles in 3 series stored in " in out and "FAILED" not in out
    with MarketStore(tmp_path / "m.duckdb") as store:
        assert store.duplicate_count() == 0
        for key in store.series():
            _, _, count = store.bounds(key)
            assert count >= 719 and store.read(key)["open_time"].diff().dropna().eq(MIN).all()


def test_cli_rejects_a_bad_window_before_asking_the_exchange(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", tmp_path / "m.duckdb")  # asking it would retry ~15 s
    env["TRADEFLOW_EXCHANGE__RETRY_BASE_DELAY_S"] = "30"
    proc = cli(env, "--timerange", "2024-bad")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert err.strip() == ("tradeflow backfill: --timerange '2024-bad': allowed forms are "
                           "START-END, START- or -END with dates as YYYYMMDD or unix seconds, "
                           "e.g. 20240101-20240301")
    assert not (tmp_path / "m.duckdb").exists()


def test_cli_says_clearly_when_the_exchange_is_down(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", tmp_path / "m.duckdb")
    env["TRADEFLOW_EXCHANGE__MAX_RETRIES"] = "0"
    proc = cli(env, "--days", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "cannot reach the exchange at http://127.0.0.1:9" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_store_unaffected_by_asyncio_cancellation(sim_factory: SimFactory) -> None:
    """A backfill cancelled mid-way (Ctrl-C) keeps what it stored and resumes cleanly."""
    sim = sim_factory(history_days=2.0)
    sim.set_faults(latency_ms=150)  # every request takes long enough to be cancelled mid-way
    store = MarketStore(":memory:")

    async def cancel_soon() -> None:
        task = asyncio.ensure_future(backfill(sim.base_url, store, keys("1m"), 2.0))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_soon())
    sim.set_faults(latency_ms=0)
    reports = run(backfill(sim.base_url, store, keys("1m"), 2.0))
    assert all(r.missing == 0 for r in reports) and store.duplicate_count() == 0


@pytest.mark.slow
def test_a_429_every_7th_request_pauses_every_series_and_none_fails(
        sim_factory: SimFactory) -> None:
    """Retry-After is the exchange saying "wait": the series sharing a client wait together,
    and the waits spend none of their retries (issue 12, item 4)."""
    sim = sim_factory(history_days=1.0)
    sim.set_faults(rate_limit_every=7, retry_after_s=2.0)
    store = MarketStore(":memory:")
    settings = dict(max_retries=0, rate_limit_max_wait_s=120)  # waits are no retries

    async def body() -> list[Any]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url, **settings)) as ex:
            now = await ex.fetch_time()
            return await backfill_many(ex, store, keys("1m"), Window(now - DAY), now,
                                       page_limit=100, empty_retry_delay=0.05)

    reports = run(body())
    assert [r.status for r in reports] == ["ok"] * 3, [r.error for r in reports]
    assert all(r.missing == 0 and r.count >= 1439 for r in reports)
    assert sim.venue.faults.requests > 3 * 15  # every series met several 429s
    assert store.duplicate_count() == 0


def test_a_rate_limit_longer_than_the_cap_fails_the_series_naming_the_kind(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(history_days=1.0)
    store = MarketStore(":memory:")

    async def body() -> list[Any]:
        settings = ExchangeSettings(base_url=sim.base_url, rate_limit_max_wait_s=1.5)
        async with ExchangeClient(settings) as ex:
            now = await ex.fetch_time()
            sim.set_faults(rate_limit_every=1, retry_after_s=1.0)
            return await backfill_many(ex, store, keys("1m")[:1], Window(now - DAY), now)

    (report,) = run(body())
    assert report.status == "failed"
    assert report.error.startswith("rate limit: ")


@pytest.mark.slow
def test_a_kill_loses_at_most_the_batches_in_hand_and_resuming_asks_only_for_the_rest(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    """Stored in bounded batches: kill -9 after N pages were served (issue 12, item 5)."""
    sim = sim_factory(history_days=8.0, speed=1e-9)  # the clock stands still
    page = 100
    env = cli_env(sim.base_url, tmp_path / "m.duckdb")
    env.update(TRADEFLOW_SYMBOLS="BTC/USDT", TRADEFLOW_TIMEFRAMES="1m",
               TRADEFLOW_BACKFILL__PAGE_LIMIT=str(page))
    clean = cli({**env, "TRADEFLOW_STORE__PATH": str(tmp_path / "clean.duckdb")}, "--days", "8")
    assert clean.wait(timeout=120) == 0
    clean_requests = sim.venue.stats["requests"]
    sim.set_faults(latency_ms=40)  # slow enough to be killed at a known page
    served_before = sim.venue.stats["klines"]
    proc = cli(env, "--days", "8")
    deadline = time.monotonic() + 60
    while sim.venue.stats["klines"] - served_before < 58 * page:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    served = sim.venue.stats["klines"] - served_before
    with MarketStore(tmp_path / "m.duckdb", read_only=True) as store:
        stored = len(table(store))
    # in hand at the kill: the batch being written, the one filling (5 pages each), the page
    # in transit
    in_hand = 2 * 5 * page + page
    assert served - in_hand <= stored < served, (served, stored)
    sim.set_faults(latency_ms=0)
    before = sim.venue.stats["requests"]
    out, err = cli(env, "--days", "8").communicate(timeout=120)
    resumed = sim.venue.stats["requests"] - before
    total = 8 * 1440
    rest = clean_requests * (total - stored) / total
    assert resumed <= 1.1 * rest + 3, (resumed, rest)
    with MarketStore(tmp_path / "m.duckdb", read_only=True) as a, \
            MarketStore(tmp_path / "clean.duckdb", read_only=True) as b:
        pd.testing.assert_frame_equal(table(a), table(b))
