"""A real Arize Phoenix server for this directory's tests (see tests/support/phoenix_server.py).

``phoenix`` (session): the running server, stopped at the end of the session, also when tests
fail. Phoenix missing or not starting FAILS the tests (it is installed by ``make test``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.phoenix_server import PhoenixServer, PhoenixUnavailable, start_phoenix


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    try:
        server = start_phoenix(tmp_path_factory.mktemp("phoenix"))
    except PhoenixUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
