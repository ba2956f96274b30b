"""engine() specs and resolve_engine(): explicit > context() > configure() > "local"."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import tg_bridge
from tg_bridge import configure, context
from tg_bridge.engines import engine, resolve_engine
from tg_bridge.engines.local import LocalEngine
from tg_bridge.engines.openai_engine import OpenAIEngine
from tg_bridge.exceptions import ConfigurationError, MissingExtraError
from tg_bridge.testing import FakeEngine


def test_local_is_the_default():
    assert isinstance(engine(), LocalEngine)
    assert isinstance(resolve_engine(), LocalEngine)
    assert isinstance(tg_bridge.engine("local"), LocalEngine)


def test_local_spec_with_a_path_and_options(gguf_path):
    built = engine(f"local:{gguf_path}", max_tokens=32, temperature=0.5)
    assert built.model_path == gguf_path
    assert built.defaults == {"temperature": 0.5, "max_tokens": 32}


def test_openai_specs(monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    built = engine("openai:gpt-4o-mini")
    assert isinstance(built, OpenAIEngine)
    assert (built.id, built.model, built.base_url) == ("openai:gpt-4o-mini", "gpt-4o-mini", None)
    assert engine("openai", model="m2").model == "m2"
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    built = engine("openai")
    assert (built.model, built.base_url) == ("from-env", "http://127.0.0.1:9/v1")


def test_openai_without_model_or_key_is_a_configuration_error(monkeypatch):
    for name in ("OPENAI_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="needs a model"):
        engine("openai")
    with pytest.raises(ConfigurationError, match="API key"):
        engine("openai:gpt-4o-mini")
    # A local server needs no real key.
    assert engine("openai:x", base_url="http://127.0.0.1:9/v1")._api_key == "not-needed"


@pytest.mark.parametrize("spec", ["gpt-4", "anthropic:claude", "", "x:y"])
def test_bad_spec_lists_the_valid_forms(spec):
    with pytest.raises(ConfigurationError) as info:
        engine(spec)
    assert '"openai:MODEL"' in str(info.value) and '"local"' in str(info.value)


def test_bad_keyword_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="bad arguments"):
        engine("local", not_an_option=1)
    with pytest.raises(ConfigurationError):
        engine("openai:m", model="n", base_url="http://127.0.0.1:9/v1")


def test_engine_instance_is_returned_as_is():
    fake = FakeEngine(["x"])
    assert engine(fake) is fake
    assert resolve_engine(fake) is fake
    with pytest.raises(ConfigurationError):
        engine(fake, timeout=3)


def test_object_no_adapter_owns_is_a_helpful_error():
    class NotAModel:
        pass

    with pytest.raises(ConfigurationError) as info:
        engine(NotAModel())
    assert "NotAModel" in str(info.value) and "adapter" in str(info.value)


def test_host_model_goes_through_its_adapter(monkeypatch):
    fake = FakeEngine(["from host"])

    class Owner:
        name = "test"

        def owns(self, obj):
            return isinstance(obj, dict) and obj.get("kind") == "host-model"

        def engine(self, model):
            return fake

    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [Owner()])
    assert engine({"kind": "host-model"}) is fake


def test_missing_local_extra_is_an_import_error_with_the_pip_line(monkeypatch):
    monkeypatch.setattr("tg_bridge.engines.models.importlib.util.find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r'pip install "tg-bridge\[local\]"'):
        engine("local")


def test_settings_order_explicit_context_configure_default():
    a, b, c, d = (FakeEngine([n], id=n) for n in "abcd")
    assert isinstance(resolve_engine(), LocalEngine)
    configure(engine=a)
    assert resolve_engine() is a
    assert resolve_engine(backward=True) is a  # backward falls back to engine
    configure(backward_engine=b)
    assert resolve_engine(backward=True) is b
    with context(engine=c):
        assert resolve_engine() is c
        assert resolve_engine(backward=True) is b
        with context(backward_engine=d):
            assert resolve_engine(backward=True) is d
        assert resolve_engine(d) is d  # explicit wins
    assert resolve_engine() is a


def test_configured_spec_strings_resolve_to_one_reused_engine(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    configure(engine="openai:reuse-me")
    first = resolve_engine()
    assert isinstance(first, OpenAIEngine) and first.model == "reuse-me"
    assert resolve_engine() is first


def test_context_follows_threads_with_copied_context_only():
    a, b = FakeEngine(["a"], id="a"), FakeEngine(["b"], id="b")
    configure(engine=a)
    seen = {}

    def worker(name):
        seen[name] = resolve_engine().id

    with context(engine=b):
        ctx = contextvars.copy_context()
        t1 = threading.Thread(target=ctx.run, args=(worker, "copied"))
        t2 = threading.Thread(target=worker, args=("plain",))
        t1.start(), t2.start()
        t1.join(), t2.join()
    assert seen == {"copied": "b", "plain": "a"}


async def test_context_is_per_asyncio_task():
    a, b, c = (FakeEngine([n], id=n) for n in "abc")
    configure(engine=a)

    async def task(override):
        if override is None:
            await asyncio.sleep(0.01)
            return resolve_engine().id
        with context(engine=override):
            await asyncio.sleep(0.01)
            return resolve_engine().id

    results = await asyncio.gather(task(b), task(c), task(None))
    assert results == ["b", "c", "a"]
    assert resolve_engine() is a


def test_invalid_settings_are_rejected():
    with pytest.raises(ConfigurationError):
        configure(max_concurrency=0)
    with pytest.raises(ConfigurationError):
        configure(timeout=-1)
    with pytest.raises(ConfigurationError):
        with context(max_retries=-2):
            pass
