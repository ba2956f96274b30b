from __future__ import annotations

import asyncio
import inspect
import logging

import pytest

import tg_bridge
import tg_bridge.adapters
from tg_bridge.capturing import capture
from tg_bridge.decorators import last_run_id
from tg_bridge.exceptions import StoreError, UsageError
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter):
    """Every test here runs against FakeApp through the fake adapter (root conftest)."""


def polite(prompt: str) -> str:
    word = prompt.rsplit(" ", 1)[-1]
    return f"Certainly! {word.upper()}" if "please" in prompt.lower() else word


def test_sync_function_keeps_signature_return_and_records(tmp_path):
    app = FakeApp("Answer {q}", polite)
    store = str(tmp_path / "r.db")

    @tg_bridge.optimizable(store=store)
    def answer(q: str, *, loud: bool = False) -> str:
        """Docs stay."""
        out = app.invoke({"q": q})
        return out.upper() if loud else out

    assert answer.__name__ == "answer" and answer.__doc__ == "Docs stay."
    assert inspect.signature(answer) == inspect.signature(answer.__wrapped__)
    assert list(inspect.signature(answer).parameters) == ["q", "loud"]
    assert answer("kiwi") == "kiwi"
    run_id = answer.last_run_id()
    assert run_id and last_run_id() == run_id
    assert answer.flush(30)
    caps = RunStore(store).captures(answer.recorder.source)
    assert len(caps) == 1 and caps[0].id == run_id
    assert caps[0].inputs == {"q": "kiwi"} and caps[0].output == "kiwi"
    assert caps[0].bindings == ("fake:fake/template",)
    assert {s.name for s in caps[0].spans} >= {"prompt", "model"}
    answer.feedback(run_id, score=0.0, text="Too terse; be polite.")
    assert RunStore(store).captures(answer.recorder.source, with_feedback=True)[0].feedback[0].score == 0.0
    with pytest.raises(UsageError):
        answer.feedback(run_id)
    with pytest.raises(StoreError):
        answer.feedback("not-a-run", score=1)
    for text in (["a", "list"], {"a": 1}, b"bytes", 3):  # end-user JSON: any type
        with pytest.raises(UsageError, match="feedback text must be a string"):
            answer.feedback(run_id, score=1.0, text=text)


def test_end_user_text_with_a_lone_surrogate_is_recorded_and_feedback_never_raises(tmp_path):
    """JSON request bodies can hand the app "\\ud800": the call is still recorded (none lost
    to UnicodeEncodeError) and ``feedback()`` with such a comment does not raise into the host."""
    app = FakeApp("Answer {q}", polite)
    store = str(tmp_path / "r.db")

    @tg_bridge.optimizable(store=store)
    def answer(q: str) -> str:
        return app.invoke({"q": q})

    assert answer("kiwi\ud800") == "kiwi\ud800"
    run_id = answer.last_run_id()
    assert answer.flush(30) and answer.recorder.errors == 0
    answer.feedback(run_id, score=0.0, text="awful \udfff answer")
    (cap,) = RunStore(store).captures(answer.recorder.source, with_feedback=True)
    assert cap.inputs == {"q": "kiwi\ud800"} and cap.output == "kiwi\ufffd"
    assert cap.feedback[0].text == "awful \ufffd answer"


async def test_async_function(tmp_path):
    app = FakeApp("Answer {q}", polite)

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    async def answer(q: str) -> str:
        return await app.ainvoke({"q": q})

    assert inspect.iscoroutinefunction(answer)
    results = await asyncio.gather(answer("a"), answer("b"))
    assert results == ["a", "b"]
    assert answer.flush(30)
    assert answer.recorder.recorded == 2
    ids = {c.id for c in RunStore(tmp_path / "r.db").captures(answer.recorder.source)}
    assert len(ids) == 2  # each call its own run, even concurrently


def test_sampling(tmp_path):
    @tg_bridge.optimizable(sample_rate=0.0, store=str(tmp_path / "r.db"))
    def never(x):
        return x * 2

    assert [never(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert never.flush(30)
    assert never.recorder.recorded == 0 and never.last_run_id() is None

    @tg_bridge.optimizable(sample_rate=0.5, store=str(tmp_path / "r.db"))
    def half(x):
        return x

    for i in range(200):
        half(i)
    assert half.flush(60)
    assert 60 < half.recorder.recorded < 140
    with pytest.raises(UsageError):
        tg_bridge.optimizable(sample_rate=2)(lambda: None)


def test_recording_failure_never_breaks_the_call(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")

    @tg_bridge.optimizable(store=str(blocker / "runs.db"))  # unusable store
    def f(x):
        return x + 1

    with caplog.at_level(logging.WARNING, logger="tg_bridge.decorators"):
        assert f(1) == 2 and f(2) == 3
        assert f.flush(30)
    assert f.recorder.errors == 2 and f.recorder.writer.failed == 2 and f.recorder.recorded == 0
    assert "could not record" in caplog.text


def test_function_errors_propagate_and_are_recorded(tmp_path):
    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def boom():
        raise KeyError("host bug")

    with pytest.raises(KeyError, match="host bug"):
        boom()
    assert boom.flush(30)
    cap = RunStore(tmp_path / "r.db").captures(boom.recorder.source)[0]
    assert cap.error.startswith("KeyError") and cap.output is None


def test_no_nested_recording_inside_capture(tmp_path):
    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def f(x):
        return x

    with capture():
        f(1)
    assert f.flush(30)
    assert f.recorder.recorded == 0


def test_fn_optimize_writes_back_through_the_function(tmp_path):
    app = FakeApp("Answer {q}", polite)

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def answer(q):
        return app.invoke({"q": q})

    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": "Please answer {q}"}
        return "Ask politely."

    result = answer.optimize(
        [({"q": "fig"}, "FIG"), ({"q": "yam"}, "YAM")],
        metric=lambda ex, out: float(out == f"Certainly! {ex.expected}"),
        engine=FakeEngine(respond), progress=False,
    )
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert answer("kiwi") == "Certainly! KIWI"
    assert answer.flush(30)
    assert answer.recorder.recorded == 1  # optimize's own calls were not recorded as production


def test_optimize_from_feedback(tmp_path):
    app = FakeApp("Answer {q}", polite)

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def answer(q):
        return app.invoke({"q": q})

    answer("fig")
    answer.feedback(answer.last_run_id(), score=0, text="Be polite: say please.")
    answer("yam")  # no feedback: not used
    engine = FakeEngine(lambda m, fmt: {"improved_value": "Please answer {q}"}
                        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {})
                        else "The template should ask politely.")
    result = answer.optimize_from_feedback(engine=engine)
    assert app.template == "Please answer {q}"
    assert result.history[0].accepted and result.baseline_score == 0.0
    grads = result.history[0].gradients["fake:fake/template"]
    assert grads and any("polite" in g for g in grads)
    # the user's words reached the backward engine
    assert any("say please" in p for p in engine.prompts())
    result.best_patch.revert()
    assert app.template == "Answer {q}"


def test_proxy_passthrough_and_recording(tmp_path):
    app = FakeApp("Answer {q}", polite)
    proxy = tg_bridge.optimizable(app, store=str(tmp_path / "r.db"))
    assert isinstance(proxy, FakeApp)  # frameworks' isinstance checks hold
    assert proxy.template == "Answer {q}" and proxy.name == "fake"
    assert repr(proxy) == repr(app) and proxy == app and hash(proxy) == hash(app)
    assert proxy.invoke({"q": "fig"}) == "fig"
    assert proxy.flush(30)
    assert proxy.recorder.recorded == 1 and proxy.last_run_id()
    proxy.name = "renamed"  # writes pass through
    assert app.name == "renamed"
    assert tg_bridge.optimizable(proxy) is proxy
    with pytest.raises(UsageError):
        tg_bridge.optimizable(object())


async def test_proxy_async_and_optimize(tmp_path):
    app = FakeApp("Answer {q}", polite)
    proxy = tg_bridge.optimizable(app, store=str(tmp_path / "r.db"))
    assert await proxy.ainvoke({"q": "fig"}) == "fig"
    engine = FakeEngine(lambda m, fmt: {"improved_value": "Please answer {q}"}
                        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {})
                        else "Ask politely.")
    result = await proxy.aoptimize([({"q": "a"}, "A")], engine=engine, progress=False,
                                   metric=lambda ex, out: float(out == f"Certainly! {ex.expected}"))
    assert result.best_score == 1.0 and app.template == "Please answer {q}"
    # the saved patch applies to a fresh deployment through its proxy, and reverts exactly
    fresh = FakeApp("Answer {q}", polite)
    applied = tg_bridge.apply_patch(tg_bridge.optimizable(fresh, store=str(tmp_path / "r.db")),
                                    result.best_patch.to_json())
    assert fresh.template == "Please answer {q}"
    applied.revert()
    assert fresh.template == "Answer {q}"
    # on the already-patched app it is a conflict
    with pytest.raises(tg_bridge.PatchConflictError):
        tg_bridge.apply_patch(proxy, result.best_patch.to_json())
    assert app.template == "Please answer {q}"


class Chain:
    """A Runnable-like object: invoke/batch/stream/astream and `|`."""

    def __init__(self, app):
        self.app = app

    def invoke(self, inputs, config=None):
        return self.app.invoke(inputs)

    def batch(self, items, config=None):
        return [self.invoke(i) for i in items]

    def stream(self, inputs, config=None):
        yield from self.app.invoke(inputs)

    async def astream(self, inputs, config=None):
        for ch in await self.app.ainvoke(inputs):
            yield ch

    def __or__(self, other):
        return ("seq", self, other)

    def __ror__(self, other):
        return ("seq", other, self)


class ChainAdapter(FakeAppAdapter):
    def owns(self, obj):
        return isinstance(obj, Chain)

    def bindings(self, target):
        return target.app.bindings()

    async def ainvoke(self, target, inputs):
        return await target.app.ainvoke(inputs)


async def test_proxy_runnable_protocol(tmp_path, monkeypatch):
    from tg_bridge.capturing.state import context_run

    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [ChainAdapter()])
    chain = Chain(FakeApp("Answer {q}", polite))
    proxy = tg_bridge.optimizable(chain, store=str(tmp_path / "r.db"))
    chunks = []
    for ch in proxy.stream({"q": "fig"}):
        assert context_run() is None  # the Run is not left active in the caller between chunks
        chunks.append(ch)
    assert "".join(chunks) == "fig"
    achunks = [ch async for ch in proxy.astream({"q": "yam"})]
    assert "".join(achunks) == "yam"
    assert proxy.batch([{"q": "a"}, {"q": "b"}]) == ["a", "b"]
    assert proxy | "parser" == ("seq", chain, "parser")
    assert 5 | proxy == ("seq", 5, chain)
    assert proxy.flush(30)
    caps = RunStore(tmp_path / "r.db").captures(proxy.recorder.source)
    assert [c.output for c in caps[:2]] == ["fig", "yam"]
    assert all(c.bindings == ("fake:fake/template",) for c in caps)
    assert len(caps) == 3


# -- our hooks fail: the host sees exactly its own result or exception (issue 11 item 10) ----

class HostError(Exception):
    pass


def _boom(*_a, **_k):
    raise RuntimeError("injected tg_bridge failure")


class FailingChain(Chain):
    """Streams two chunks, then raises the host's own error."""

    def invoke(self, inputs, config=None):
        raise HostError("host invoke failed")

    def stream(self, inputs, config=None):
        yield "a"
        yield "b"
        raise HostError("host stream failed")

    async def astream(self, inputs, config=None):
        yield "a"
        yield "b"
        raise HostError("host astream failed")


@pytest.fixture
def broken_hooks(monkeypatch):
    """Run.finish, the current-Run switch and output_text all raise."""
    import tg_bridge.proxy as proxy_mod
    from tg_bridge.capturing.run import Run

    monkeypatch.setattr(Run, "finish", _boom)
    monkeypatch.setattr(proxy_mod, "set_current", _boom)
    monkeypatch.setattr(proxy_mod, "output_text", _boom)


async def test_failing_run_finish_never_replaces_the_host_exception(tmp_path, monkeypatch,
                                                                   broken_hooks):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [ChainAdapter()])
    proxy = tg_bridge.optimizable(FailingChain(FakeApp("Answer {q}", polite)),
                                  store=str(tmp_path / "r.db"))
    with pytest.raises(HostError, match="host invoke failed"):
        proxy.invoke({"q": "x"})
    got = []
    with pytest.raises(HostError, match="host stream failed"):
        for chunk in proxy.stream({"q": "x"}):
            got.append(chunk)
    assert got == ["a", "b"]
    agot = []
    with pytest.raises(HostError, match="host astream failed"):
        async for chunk in proxy.astream({"q": "x"}):
            agot.append(chunk)
    assert agot == ["a", "b"]
    assert proxy.recorder.errors > 0  # counted, not raised

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def host():
        raise HostError("host function failed")

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    async def ahost():
        raise HostError("async host function failed")

    with pytest.raises(HostError, match="host function failed"):
        host()
    with pytest.raises(HostError, match="async host function failed"):
        await ahost()
    with pytest.raises(HostError, match="inside capture"):
        with capture():
            raise HostError("inside capture")


async def test_streams_keep_their_chunks_when_our_hooks_fail(tmp_path, monkeypatch, broken_hooks):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [ChainAdapter()])
    proxy = tg_bridge.optimizable(Chain(FakeApp("Answer {q}", polite)), store=str(tmp_path / "r.db"))
    assert "".join(proxy.stream({"q": "fig"})) == "fig"
    assert "".join([c async for c in proxy.astream({"q": "yam"})]) == "yam"
    assert proxy.invoke({"q": "kiwi"}) == "kiwi"


def test_failing_input_reader_never_reaches_the_host(tmp_path, monkeypatch):
    import tg_bridge.decorators as deco

    monkeypatch.setattr(deco, "_inputs", _boom)

    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def f(x):
        return x * 2

    assert f(21) == 42
    assert f.recorder.errors == 1


def test_inputs_are_recorded_as_they_were_at_call_time(tmp_path):
    """The writer stores later; what it stores is the call-time snapshot, not a host object
    the app mutated in the meantime (the store is write-locked so the order is certain)."""
    import sqlite3

    path = str(tmp_path / "r.db")
    RunStore(path).runs()

    @tg_bridge.optimizable(store=path)
    def f(payload: dict) -> str:
        return "ok"

    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        payload = {"q": "original"}
        assert f(payload) == "ok"
        payload["q"] = "mutated after the call"
    finally:
        lock.execute("COMMIT")
        lock.close()
    assert f.flush(60)
    (cap,) = RunStore(path).captures(f.recorder.source)
    assert cap.inputs == {"payload": {"q": "original"}}


def test_a_dropped_call_has_no_run_id(tmp_path):
    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def f(x):
        return x

    assert f(1) == 1 and f.last_run_id()
    assert f.recorder.close(30)
    assert f(2) == 2  # after close every record is dropped...
    assert f.recorder.dropped == 1
    kept = f.last_run_id()  # still the first call's id: the dropped one was never named
    assert kept == RunStore(tmp_path / "r.db").captures(f.recorder.source)[0].id  # ...and not named


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -float("inf"), 10**400, True, "1"])
def test_feedback_rejects_non_finite_or_non_numeric_scores(tmp_path, score):
    @tg_bridge.optimizable(store=str(tmp_path / "r.db"))
    def f(x):
        return x

    f(1)
    with pytest.raises(UsageError, match="finite number"):
        f.feedback(f.last_run_id(), score=score)
