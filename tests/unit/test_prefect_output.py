"""The check that a ``prefect deploy`` output carries no HTTP 422 must not trip on ids or ports."""

from __future__ import annotations

from tests.fixtures.prefect import http_422_in


def test_a_deployment_id_or_port_holding_422_is_not_an_error() -> None:
    # Printed by a clean `prefect deploy` in CI on 2026-11-21; the old substring check failed on it.
    out = ("Deployment 'backfill/backfill' successfully created with id\n"
           "'06848422-703e-4898-8cb6-4d11fc6973ff'.\n"
           "View Deployment in UI: http://127.0.0.1:42201/deployments/deployment/"
           "422abcde-0000-4422-8422-000000000422x")
    assert not http_422_in(out)


def test_an_http_422_is_found() -> None:
    assert http_422_in("httpx.HTTPStatusError: Client error '422 Unprocessable Entity' for url")
    assert http_422_in("Response status code 422")
    assert http_422_in('{"detail": "Unprocessable"}')
