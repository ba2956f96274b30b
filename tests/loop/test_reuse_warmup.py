"""The engines' HTTP clients are built while the baseline waits, not by the first judge or
backward call (issue 14); a failed preparation changes nothing."""

from __future__ import annotations

import pytest

from tg_bridge.loop.warmup import prepare_engines
from tg_bridge.testing import FakeEngine


class Preparing:
    def __init__(self, error: Exception | None = None) -> None:
        self.prepared = 0
        self.error = error

    async def prepare(self) -> None:
        self.prepared += 1
        if self.error is not None:
            raise self.error


async def test_each_distinct_engine_is_prepared_once_and_failures_are_swallowed():
    ok, broken = Preparing(), Preparing(RuntimeError("no network"))
    await prepare_engines([ok, ok, broken, None, FakeEngine(["x"])])
    assert (ok.prepared, broken.prepared) == (1, 1)


async def test_openai_engine_first_call_uses_the_prepared_client(monkeypatch):
    openai = pytest.importorskip("openai")
    import tg_bridge

    built = []

    class Counting(openai.AsyncOpenAI):
        def __init__(self, *args, **kwargs):
            built.append(kwargs.get("base_url"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(openai, "AsyncOpenAI", Counting)
    engine = tg_bridge.engine("openai:m", base_url="http://127.0.0.1:9/v1", api_key="k")
    await engine.prepare()
    assert len(built) == 1
    client = engine._client()  # what the first call uses
    assert isinstance(client, Counting) and len(built) == 1
    await engine.prepare()  # already there: nothing built
    assert len(built) == 1
    await engine.aclose()


async def test_preload_imports_the_named_modules_and_swallows_failures():
    import sys

    from tg_bridge.loop.warmup import STEP_MODULES, preload_modules

    sys.modules.pop("colorsys", None)
    await preload_modules(["tg_bridge_no_such_module", "colorsys"])
    assert "colorsys" in sys.modules
    await preload_modules()
    assert all(name in sys.modules for name in STEP_MODULES)
