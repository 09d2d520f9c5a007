"""kill -9 the trader at random moments: the ledger stays consistent, no order twice."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures import trader_worker
from tests.fixtures.forkserver import forkserver_context
from tests.fixtures.simulator import SimFactory
from trader.ledger import Ledger

MIN = 60_000
KILLS = 20


@pytest.fixture(scope="module")
def forkserver() -> mp.context.ForkServerContext:
    # Imports happen once in the server; each trader process then starts in milliseconds.
    return forkserver_context()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["paper", "live"])
def test_kill_at_random_moments_keeps_the_ledger_consistent(
    sim_factory: SimFactory, tmp_path: Path, forkserver: mp.context.ForkServerContext, mode: str
) -> None:
    sim = sim_factory(history_days=0.5, speed=600.0, symbols=("BTC/USDT", "ETH/USDT"),
                      ws_update_ms=50)
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    rng = random.Random(11 if mode == "paper" else 12)
    kills = 0
    for _ in range(KILLS):
        proc = forkserver.Process(target=trader_worker.run, args=(sim.base_url, url, mode))
        proc.start()
        time.sleep(rng.uniform(0.4, 1.4))
        assert proc.is_alive(), f"the trader died on its own (exit {proc.exitcode})"
        proc.kill()
        proc.join()
        kills += 1
    final = forkserver.Process(target=trader_worker.run, args=(sim.base_url, url, mode, 15))
    final.start()
    final.join(timeout=120)
    assert final.exitcode == 0
    assert kills == KILLS

    ledger = Ledger(url)
    assert ledger.check_consistency("kill") == []
    history = [h.ts for h in ledger.equity_history("kill")]
    assert len(history) > 60
    assert all(b - a == MIN for a, b in zip(history, history[1:], strict=False)), \
        "a candle was skipped or processed twice"
    orders = ledger.orders("kill")
    assert orders, "the model trades"
    ids = Counter(o.client_order_id for o in orders)
    assert max(ids.values()) == 1
    if mode == "live":
        on_exchange = Counter(o.client_id for o in
                              sim.server.broker.accounts["sim-key"].orders.values())
        assert on_exchange and max(on_exchange.values()) == 1, "an order reached it twice"
        assert set(on_exchange) <= set(ids), "an exchange order the ledger does not know"
        for o in orders:
            if o.status == "FILLED":
                assert o.client_order_id in on_exchange
    assert not ledger.pending_orders("kill") or all(
        o.status == "NEW" for o in ledger.pending_orders("kill")), [
        (o.symbol, o.side, o.status, o.amount, o.error) for o in ledger.pending_orders("kill")]
