"""MLflow tracking and registry access shared by training, promotion, the CLI and the trader.

Only public MLflow APIs (``mlflow``, ``mlflow.MlflowClient``) are used. Tracking is local by
default (SQLite backend under ``data/``, file artifacts); a tracking URI in the profile
points everything at a server instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeflow.config import Settings

CHAMPION = "champion"


def configure_tracking(settings: Settings) -> str:
    """Point MLflow at the profile's tracking store; returns the experiment id."""
    # No phoning home from an offline machine; MLflow documents these switches.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    # MLflow announces schema creation and migrations at INFO on stderr; our commands print
    # their own one-line messages, so keep its chatter to warnings.
    for name in ("mlflow", "alembic"):
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)

    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    if experiment is not None:
        experiment_id = str(experiment.experiment_id)
    else:
        try:
            experiment_id = str(client.create_experiment(
                settings.mlflow.experiment, artifact_location=settings.mlflow_artifact_root))
        except Exception:  # created concurrently by another process
            experiment = client.get_experiment_by_name(settings.mlflow.experiment)
            if experiment is None:
                raise
            experiment_id = str(experiment.experiment_id)
    # Runs started without an experiment land here too, not in the Default experiment, whose
    # artifacts would go to ./mlruns under whatever directory the process runs in.
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One registered model version, as `tradeflow models` shows it."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created_ms: int

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def _info(name: str, v: Any, aliases: tuple[str, ...] | None = None) -> VersionInfo:
    found = tuple(getattr(v, "aliases", None) or ()) if aliases is None else aliases
    return VersionInfo(name, str(v.version), v.run_id, found, dict(v.tags or {}),
                       int(v.creation_timestamp or 0))


def _missing(exc: Exception) -> bool:
    text = str(exc)
    return "RESOURCE_DOES_NOT_EXIST" in text or "not found" in text.lower()


def list_versions(name: str) -> list[VersionInfo]:
    """Every version of a registered model with its aliases, newest first (empty when none)."""
    client = _client()
    try:
        model = client.get_registered_model(name)
    except Exception as exc:
        if _missing(exc):
            return []
        raise
    # Version searches do not fill in aliases on every backend; the model holds them all.
    by_version: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    out: list[VersionInfo] = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{name}'", max_results=1000,
                                            page_token=token)
        out += [_info(name, v, tuple(sorted(by_version.get(str(v.version), ())))) for v in page]
        token = getattr(page, "token", None)
        if not token:
            break
    return sorted(out, key=lambda v: int(v.version), reverse=True)


def get_version(name: str, version: str) -> VersionInfo:
    """One version with its tags and aliases."""
    return _info(name, _client().get_model_version(name, str(version)))


def register_version(name: str, model_uri: str, tags: dict[str, Any]) -> VersionInfo:
    """Register ``model_uri`` (``runs:/...`` or ``models:/<model id>``) as a new version."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})
    return get_version(name, str(version.version))


def load_model(name: str, version: str | None = None) -> Any:
    """``mlflow.pyfunc.load_model`` of a version, or of the champion when no version is given.

    The trader takes the python model with ``load_model(name).unwrap_python_model()``
    (a :class:`models.pyfunc.CandleModel`: ``predict_last``, ``warmup``, ``timeframe``).
    """
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri(name, version))


def model_signature(name: str, version: str) -> Any:
    """The signature stored with a version's model (None when it has none), without loading it."""
    from mlflow.models import get_model_info

    return get_model_info(model_uri(name, version)).signature


def champion(name: str) -> VersionInfo | None:
    """The version holding the champion alias, or None."""
    client = _client()
    try:
        v = client.get_model_version_by_alias(name, CHAMPION)
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    return _info(name, v)


def set_champion(name: str, version: str) -> None:
    """Move the champion alias to ``version``."""
    _client().set_registered_model_alias(name, CHAMPION, version)


def tag_version(name: str, version: str, tags: dict[str, Any]) -> None:
    """Set tags on a version (values as strings)."""
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def model_uri(name: str, version: str | None = None) -> str:
    """``models:/name/version``, or the champion alias when no version is given."""
    return f"models:/{name}/{version}" if version else f"models:/{name}@{CHAMPION}"


def list_model_names(prefix: str = "tradeflow-") -> list[str]:
    """Names of the registered models starting with ``prefix``, sorted."""
    client = _client()
    names: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(f"name LIKE '{prefix}%'", max_results=1000,
                                               page_token=token)
        names += [m.name for m in page]
        token = getattr(page, "token", None)
        if not token:
            break
    return sorted(names)
