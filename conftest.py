"""Shared fixtures for every test directory (tests/ and integrations/*/tests).

- ``llama_server`` (session): a real OpenAI-compatible llama.cpp server on the embedded
  SmolLM2 model, on 127.0.0.1; ``.base_url`` (ends in /v1) and ``.model``. Started once,
  terminated at session end (also when tests fail).
- ``fault_server`` (function): a scriptable loopback server (see tests/support/fault_server.py).
- ``phoenix`` (session): a real ``phoenix serve`` on 127.0.0.1 (tests/support/phoenix_server.py).
- ``gguf_path`` (session): path of the embedded model file.
- Settings made with ``tg_bridge.configure()`` are reset after every test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

# tests.support must be importable from every test dir (pytest runs with importlib mode,
# which does not put the rootdir on sys.path).
_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# The suite runs the small SmolLM2 model wherever "local" or the default backward engine is
# meant (tests must not need the 1.6 GB Qwen packages); a test wanting Qwen names it.
os.environ.setdefault("TG_BRIDGE_LOCAL_MODEL", "smollm2")

from tests.support.fault_server import FaultServer  # noqa: E402
from tests.support.llama_server import LlamaServer, start_llama_server  # noqa: E402


@pytest.fixture(scope="session")
def gguf_path() -> str:
    from tg_bridge.engines.local import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def llama_server(gguf_path: str) -> Iterator[LlamaServer]:
    server = start_llama_server(gguf_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real Arize Phoenix server (tests/support/phoenix_server.py), one per session; not
    installed or not starting FAILS the test (``make test`` installs it)."""
    from tests.support.phoenix_server import PhoenixUnavailable, start_phoenix

    try:
        server = start_phoenix(tmp_path_factory.mktemp("phoenix"))
    except PhoenixUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset_tg_bridge_settings() -> Iterator[None]:
    yield
    from tg_bridge import config

    config.reset()


@pytest.fixture
def fake_app_adapter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make tg_bridge.testing.FakeApp an adapter-owned target (no host framework involved).

    capture() instruments the adapters load_adapters() returns, once per process: if that
    happened here (with the fake list), undo it so later tests instrument the real adapters.
    """
    import tg_bridge.adapters
    from tg_bridge.capturing import instrumentation
    from tg_bridge.testing import FakeAppAdapter

    before = instrumentation._active
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
    yield
    if instrumentation._active is not before:
        instrumentation.uninstrument()
