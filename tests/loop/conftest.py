from __future__ import annotations

import pytest

import tg_bridge.adapters
from tg_bridge.testing import FakeAppAdapter


@pytest.fixture(autouse=True)
def fake_adapter(monkeypatch):
    """Make FakeApp an adapter-owned target (no host framework involved)."""
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "runs.db")
