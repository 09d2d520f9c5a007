"""The profile a command runs on: the shared settings plus the simulator's section.

The core's :class:`~tradeflow.config.Settings` keeps the ``simulator`` section as written;
the command line is where the simulator is wired in, so its profile checks that section with
the simulator's own model when it loads, and every command fails at once on a bad key there.
"""

from __future__ import annotations

import argparse
from typing import Any

from simulator.settings import SimulatorSettings
from tradeflow.config import Settings, load_settings

# Commands that only read: no log file of their own.
UNLOGGED = {"status", "logs", "config", "models"}


class Profile(Settings):
    """:class:`~tradeflow.config.Settings` whose ``simulator`` section is checked."""

    simulator: SimulatorSettings = SimulatorSettings()  # type: ignore[assignment]


def load_profile(path: str | None = None, *, overrides: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> Profile:
    """:func:`~tradeflow.config.load_settings` of a profile, its simulator section checked."""
    return load_settings(path, overrides=overrides, env=env, model=Profile)


def settings_from(args: argparse.Namespace, *, check_exchange: bool = False,
                  overrides: dict[str, Any] | None = None) -> Profile:
    """Load the profile named by ``--config`` (or the default) with CLI overrides.

    ``check_exchange`` also checks the exchange id and timeframes against ccxt.
    """
    import logging

    settings = load_profile(getattr(args, "config", None), overrides=overrides)
    if check_exchange:
        from tradeflow.exchange.checks import check_against_exchange

        check_against_exchange(settings)
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(settings.log_level)
    command = getattr(args, "command", None)
    if command and command not in UNLOGGED:
        from tradeflow.monitoring.logs import attach_file_log

        attach_file_log(settings, command)  # data/logs/<command>.log; cli.main detaches it
    return settings
