"""Config files: YAML read into frozen, strict pydantic models, and their one-line errors.

Profiles (:mod:`tradeflow.config`) and strategies (:mod:`tradeflow.strategy`) are read by
the one :func:`read_yaml`, and a validation error of either becomes one :class:`ConfigError`
line through the one :func:`config_error`: the key, the value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(Exception):
    """Bad configuration; ``str()`` is the one line shown to the user."""

    MISSING: Any = object()  # ``value`` of a key that is absent

    def __init__(self, key: str, value: Any, allowed: str, source: str | None = None) -> None:
        where = f" ({source})" if source else ""
        shown = "" if value is ConfigError.MISSING else f" = {value!r}"
        super().__init__(f"config error{where}: {key}{shown}: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


class Frozen(BaseModel):
    """Base of every settings model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def one_or_many(value: Any) -> Any:
    """``"a"`` or ``"a, b"`` (how environment overrides write lists) as a tuple; else as is."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def read_yaml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; :class:`ConfigError` naming ``what`` otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(what, str(path), f"cannot read file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(what, str(path), f"not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise ConfigError(what, str(path), "must be a mapping of keys to values")
    return data


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it (error messages)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_error(exc: ValidationError, model: type[BaseModel], source: str | None, *,
                 hint: str = "", redact: Callable[[list[str], Any], Any] | None = None
                 ) -> ConfigError:
    """pydantic's first error as the one :class:`ConfigError` line shown to the user.

    Missing keys are named together (with ``hint``); an unknown key lists the allowed ones.
    """
    errors = exc.errors()
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    if err["type"] == "missing":
        missing = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "missing"]
        plural = "s" if len(missing) > 1 else ""
        return ConfigError(", ".join(missing), ConfigError.MISSING,
                           f"required key{plural} missing{hint}", source)
    value = err.get("input") if redact is None else redact(loc, err.get("input"))
    if err["type"] == "extra_forbidden":
        allowed = sorted(_model_at(model, [p for p in loc[:-1] if not p.isdigit()]).model_fields)
        return ConfigError(key, value, f"unknown key; allowed: {', '.join(allowed)}", source)
    return ConfigError(key, value, err["msg"].removeprefix("Value error, "), source)


def _model_at(model: type[BaseModel], path: list[str]) -> type[BaseModel]:
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return model
