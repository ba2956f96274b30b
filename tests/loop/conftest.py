from __future__ import annotations

import pytest

import tg_bridge.adapters
from tg_bridge.testing import FakeAppAdapter


@pytest.fixture(autouse=True)
def fake_adapter(monkeypatch):
    """Make FakeApp an adapter-owned target (no host framework involved).

    capture() instruments the adapters load_adapters() returns, once per process: if that
    happened here (with the fake list), undo it so later tests instrument the real adapters.
    """
    from tg_bridge.capture import instrumentation

    before = instrumentation._active
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
    yield
    if instrumentation._active is not before:
        instrumentation.uninstrument()


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "runs.db")
