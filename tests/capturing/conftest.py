from __future__ import annotations

import pytest

import tg_bridge.adapters
from tg_bridge.capturing import instrumentation


@pytest.fixture(autouse=True)
def no_real_adapters(monkeypatch):
    """Core tests never load the LangChain/LlamaIndex adapters (no host framework import)."""
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [])
    monkeypatch.setattr(instrumentation, "_active", None)
    yield
    monkeypatch.setattr(instrumentation, "_active", None)


@pytest.fixture
def tracer():
    from tg_bridge.capturing import get_tracer

    return get_tracer("tests.capture")
