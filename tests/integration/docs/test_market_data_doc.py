"""Every Python example of docs/market-data.md runs, as a user would run it, against the
simulator, and prints what the page says it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.simulator import SimFactory

REPO = Path(__file__).resolve().parents[3]
PAGE = REPO / "docs" / "market-data.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
# what each example prints last, in order of the page
LAST_LINES = [r"^disconnected$", r"^traded \{'BTC/USDT': [0-9.]+, 'ETH/USDT': [0-9.]+\} "
              r"callback errors [1-9]\d*$", r"^\['connecting', 'connected', 'disconnected'\]$",
              r"^\d\.\d+(e-\d+)?$", r"^Price\(symbol='ETH/USDT', price=[0-9.]+, .*channel='ticker'",
              r"^[1-9]\d* quotes, best gap -?[0-9.]+ bps, \d+ signals$"]


def test_the_page_has_the_examples_this_test_knows() -> None:
    assert len(EXAMPLES) == len(LAST_LINES)


@pytest.mark.parametrize("index", range(len(LAST_LINES)))
def test_example_runs(index: int, sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100, venues=("binance", "okx"))
    script = tmp_path / f"example_{index}.py"
    script.write_text(EXAMPLES[index])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env["TRADEFLOW_EXCHANGE__BASE_URL"] = sim.base_url
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert re.search(LAST_LINES[index], lines[-1]), done.stdout[-2000:]
    assert "Traceback" not in done.stderr
