"""The profile's ``monitoring:`` section (composed into :class:`tradeflow.config.Settings`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from tradeflow.config_files import Frozen


class MonitoringSettings(Frozen):
    """Prometheus and Pushgateway of ``tradeflow up --monitoring``; where flow runs push."""

    prometheus_port: int = Field(9090, ge=1, le=65535, description="Prometheus web/API port")
    pushgateway_port: int = Field(9091, ge=1, le=65535, description="Pushgateway port")
    scrape_interval_s: float = Field(15.0, gt=0, le=3600,
                                     description="seconds between Prometheus scrapes")
    pushgateway_url: str | None = Field(
        None, description="flow runs push their metrics here (http://host:port); null: no push; "
        "`tradeflow up --monitoring` sets it for the worker's flow runs")

    @field_validator("pushgateway_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None
