"""The SQLite completion cache, usage() accounting, and BaseEngine's retry/backoff rules."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
import threading

import pytest

from tg_bridge import configure, context, usage
from tg_bridge.engines import base
from tg_bridge.engines.base import Completion
from tg_bridge.engines.cache import cache_key, open_cache
from tg_bridge.exceptions import ConfigurationError, EngineError, UsageError
from tg_bridge.testing import FakeEngine

MSG = [{"role": "user", "content": "héllo"}]


# -- keys ------------------------------------------------------------------------------------
def test_key_is_canonical_and_covers_every_part():
    k = cache_key("e", "m", MSG, {"type": "object"}, {"temperature": 0, "max_tokens": 5})
    assert k == cache_key("e", "m", MSG, {"type": "object"}, {"max_tokens": 5, "temperature": 0})
    assert len(k) == 64 and int(k, 16) >= 0
    variants = [
        cache_key("e2", "m", MSG, {"type": "object"}, {"temperature": 0, "max_tokens": 5}),
        cache_key("e", "m2", MSG, {"type": "object"}, {"temperature": 0, "max_tokens": 5}),
        cache_key("e", "m", [{"role": "user", "content": "hello"}], {"type": "object"},
                  {"temperature": 0, "max_tokens": 5}),
        cache_key("e", "m", MSG, None, {"temperature": 0, "max_tokens": 5}),
        cache_key("e", "m", MSG, {"type": "object"}, {"temperature": 0.1, "max_tokens": 5}),
        cache_key("e", "m", MSG, {"type": "object"}, {"temperature": 0}),
    ]
    assert len({k, *variants}) == 7


def test_key_is_stable_across_processes():
    here = cache_key("e", "m", MSG, None, {"seed": 1})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            from tg_bridge.engines.cache import cache_key
            print(cache_key("e", "m", {MSG!r}, None, {{"seed": 1}}))
        """)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.stdout.strip() == here


# -- storage ---------------------------------------------------------------------------------
def test_open_cache_is_memoized_per_absolute_path_and_creates_dirs(tmp_path, monkeypatch):
    path = tmp_path / "a" / "b" / "c.db"
    cache = open_cache(str(path))
    assert path.exists()
    monkeypatch.chdir(tmp_path)
    assert open_cache("a/b/c.db") is cache
    assert open_cache(cache) is cache
    assert open_cache(tmp_path / "other.db") is not cache


def test_put_get_roundtrip_keeps_text_parsed_and_tokens(tmp_path):
    cache = open_cache(tmp_path / "c.db")
    assert cache.get("missing") is None
    stored = Completion("t", parsed={"a": [1, "ü"]}, prompt_tokens=3, completion_tokens=4, model="m")
    cache.put("k", stored)
    got = cache.get("k")
    assert (got.text, got.parsed, got.prompt_tokens, got.completion_tokens, got.model) == (
        "t", {"a": [1, "ü"]}, 3, 4, "m",
    )
    assert cache.count() == 1


def test_unusable_cache_path_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot open the completion cache"):
        open_cache(blocker / "sub" / "c.db")


def test_cache_is_thread_safe(tmp_path):
    cache = open_cache(tmp_path / "threads.db")
    errors = []

    def work(n):
        try:
            for i in range(25):
                cache.put(f"{n}-{i}", Completion(f"{n}-{i}"))
                assert cache.get(f"{n}-{i}").text == f"{n}-{i}"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.count() == 150


# -- cache through engines, and usage accounting ---------------------------------------------
async def test_cache_hit_costs_no_tokens_and_is_counted(tmp_path):
    engine = FakeEngine(lambda m: "one two three", cache=str(tmp_path / "c.db"))
    with usage() as meter:
        first = await engine.acomplete(MSG)
        second = await engine.acomplete(MSG)
        third = await engine.acomplete(MSG, temperature=0.5)  # different params: a miss
    assert engine.call_count == 2
    assert (first.cached, second.cached, third.cached) == (False, True, False)
    assert second.text == first.text and second.total_tokens == 0
    assert meter.calls == 3 and meter.cached_calls == 1
    assert meter.completion_tokens == 6 and meter.prompt_tokens == 2


async def test_cache_from_configure_and_context(tmp_path):
    engine = FakeEngine(lambda m: "x")
    configure(cache=str(tmp_path / "conf.db"))
    await engine.acomplete(MSG)
    assert (await engine.acomplete(MSG)).cached
    with context(cache=str(tmp_path / "ctx.db")):
        assert not (await engine.acomplete(MSG)).cached
    assert open_cache(tmp_path / "ctx.db").count() == 1


async def test_structured_cache_hit_reparses_into_the_model(tmp_path):
    from pydantic import BaseModel

    class Out(BaseModel):
        value: int

    engine = FakeEngine(lambda m: '{"value": 7}', cache=str(tmp_path / "s.db"))
    await engine.acomplete(MSG, response_format=Out)
    hit = await engine.acomplete(MSG, response_format=Out)
    assert hit.cached and hit.parsed == Out(value=7)


async def test_usage_scopes_nest_and_follow_tasks():
    engine = FakeEngine(lambda m: "a b")
    with usage() as outer:
        await engine.acomplete(MSG)
        with usage() as inner:
            await asyncio.gather(*(engine.acomplete(MSG) for _ in range(3)))
    assert (outer.calls, inner.calls) == (4, 3)
    assert outer.completion_tokens == 8 and inner.completion_tokens == 6
    assert outer.as_dict()["total_tokens"] == outer.total_tokens == 12


def test_usage_counts_sync_calls_inside_a_running_loop():
    engine = FakeEngine(lambda m: "a b c")

    async def notebook_cell():
        with usage() as meter:
            completion = engine.complete(MSG)  # blocking call from inside a loop
        return completion, meter

    completion, meter = asyncio.run(notebook_cell())
    assert completion.text == "a b c"
    assert meter.calls == 1 and meter.completion_tokens == 3


# -- retry rules (BaseEngine) ----------------------------------------------------------------
async def test_retryable_errors_are_retried_and_others_are_not():
    flaky = FakeEngine([EngineError("busy", retryable=True), "fine"], max_retries=2)
    assert (await flaky.acomplete(MSG)).text == "fine"
    fatal = FakeEngine([EngineError("bad", status=400), "never"], max_retries=5)
    with pytest.raises(EngineError, match="bad"):
        await fatal.acomplete(MSG)
    assert fatal.call_count == 1


async def test_unexpected_exception_becomes_an_engine_error():
    engine = FakeEngine([KeyError("choices")], max_retries=3)
    with pytest.raises(EngineError) as info:
        await engine.acomplete(MSG)
    assert isinstance(info.value.__cause__, KeyError)
    assert engine.call_count == 1


def test_bad_messages_are_usage_errors():
    engine = FakeEngine(["x"])
    for bad in ("text", [], [{"role": "user"}], [{"role": "user", "content": 3}]):
        with pytest.raises(UsageError):
            engine.complete(bad)


def test_backoff_grows_with_jitter_and_honours_retry_after():
    random.seed(0)
    plain = EngineError("x", retryable=True)
    delays = [[base._backoff(a, plain) for _ in range(50)] for a in range(6)]
    for attempt, samples in enumerate(delays):
        cap = min(0.25 * 2**attempt, 8.0)
        assert all(cap / 2 <= d <= cap for d in samples)
        assert len(set(samples)) > 1  # jitter
    assert max(delays[5]) <= 8.0
    told = EngineError("x", retryable=True, raw={"retry_after": 3, "body": ""})
    assert 3.0 <= base._backoff(0, told) <= 3.1
    huge = EngineError("x", retryable=True, raw={"retry_after": 9999, "body": ""})
    assert base._backoff(0, huge) <= 60.1
