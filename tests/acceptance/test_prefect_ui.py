"""The Prefect UI, in headless Chromium, lists the deployments with the daily schedule."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.prefect import PrefectServer

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "data" / "prefect-ui-deployments.png"
# Flags the machine's notes recommend: no sandbox as root, no background network chatter.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1600,1000", "--virtual-time-budget=20000"]


@pytest.fixture
def chromium(tmp_path: Path) -> list[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        message = "Debian's chromium is not installed (.ci/run installs it)"
        if os.environ.get("TRADEFLOW_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return [exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]


def test_ui_lists_the_deployments_with_the_daily_schedule(deployed: PrefectServer,
                                                          chromium: list[str]) -> None:
    url = f"{deployed.ui_url}/deployments"
    dom = subprocess.run([*chromium, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    for name in ("daily-retrain", "backfill", "validate", "train", "promote", "trader",
                 "recorder"):
        assert name in text, f"{name} not listed on {url}: {text[-1500:]}"
    assert "At 02:00 AM every day" in text, "the daily 02:00 UTC schedule is not shown"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    subprocess.run([*chromium, f"--screenshot={SCREENSHOT}", url], capture_output=True,
                   timeout=120, check=True)
    assert SCREENSHOT.stat().st_size > 20_000
