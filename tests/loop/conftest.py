from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter):
    """Every test here runs against FakeApp through the fake adapter (root conftest)."""


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "runs.db")
