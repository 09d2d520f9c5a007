"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from tradeflow.config import Settings, load_settings


def settings_from(args: argparse.Namespace, *, check_exchange: bool = False,
                  overrides: dict[str, Any] | None = None) -> Settings:
    """Load the profile named by ``--config`` (or the default) with CLI overrides."""
    import logging

    settings = load_settings(getattr(args, "config", None), overrides=overrides,
                             check_exchange=check_exchange)
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(settings.log_level)
    return settings
