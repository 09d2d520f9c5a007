"""The train and promote flows against a real local Prefect server: results and artifacts.

The promote flow completes whatever it decides, and fails when there is no model or the
newest version's signature does not take the strategy's raw candles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.prefect import PrefectServer
from tests.integration.models.test_training_support import (
    END_MS,
    fill_store,
    log_mismatched_version,
    write_profile,
    write_strategy,
)


@pytest.fixture(autouse=True)
def send_logs_while_the_server_is_up() -> Iterator[None]:
    """Flush the flows' API logs before the session's server stops."""
    yield
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("flows")
    store_path = root / "market.duckdb"
    fill_store(store_path, 1.0).close()
    return write_profile(root, store_path, root / "mlflow"), write_strategy(root, "flowcheck")


def markdown(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_train_then_promote_flows(prefect_server: PrefectServer,
                                  files: tuple[Path, Path]) -> None:
    from flows.promote import promote
    from flows.train import train

    profile, strategy = files
    state = train(strategy=str(strategy), config=str(profile), end=str(END_MS),
                  return_state=True)
    assert state.is_completed(), state
    trained = state.result()
    assert trained["model"] == "tradeflow-flowcheck" and trained["version"] == "1"
    assert trained["auc"] > 0.55 and trained["trades"] > 0
    report = markdown("training-flowcheck")
    assert "tradeflow-flowcheck v1" in report and f"`{trained['run_id']}`" in report
    assert "baseline:momentum" in report and "| sharpe |" in report.replace("sharpe_ci", "")

    state = promote(strategy=str(strategy), config=str(profile), end=END_MS, return_state=True)
    assert state.is_completed(), state
    decided = state.result()
    assert decided["decision"] == "promoted" and decided["challenger"] == "1"
    report = markdown("promotion-flowcheck")
    assert "**promoted**" in report and "| challenger | v1 |" in report

    # Promoting again: the newest version already is the champion. Still Completed, and the
    # tags keep the decision that promoted it.
    state = promote(strategy=str(strategy), config=str(profile), end=END_MS, return_state=True)
    assert state.is_completed(), state
    assert state.result()["decision"] == "kept_champion"
    from models import registry
    from tradeflow.config import load_settings

    registry.configure_tracking(load_settings(profile, env={}))
    assert registry.get_version("tradeflow-flowcheck", "1").tags["promotion.decision"] == (
        "promoted")


def test_promote_flow_fails_without_a_model(prefect_server: PrefectServer,
                                            files: tuple[Path, Path], tmp_path: Path) -> None:
    from flows.promote import promote

    profile, _ = files
    strategy = write_strategy(tmp_path, "never_trained")
    state = promote(strategy=str(strategy), config=str(profile), end=END_MS, return_state=True)
    assert state.is_failed(), state
    with pytest.raises(Exception, match="no registered version of tradeflow-never_trained"):
        state.result()


def test_promote_flow_fails_on_a_signature_mismatch(prefect_server: PrefectServer,
                                                    files: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    from flows.promote import promote
    from tradeflow.config import load_settings

    profile, _ = files
    strategy = write_strategy(tmp_path, "mismatch")
    version = log_mismatched_version(load_settings(profile, env={}), "tradeflow-mismatch")
    state = promote(strategy=str(strategy), config=str(profile), end=END_MS, return_state=True)
    assert state.is_failed(), state
    with pytest.raises(Exception, match=f"tradeflow-mismatch v{version} does not take the "
                                        "strategy's candles: missing column.s. volume"):
        state.result()
