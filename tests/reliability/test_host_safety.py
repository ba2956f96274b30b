"""Host safety: failures inside our hooks never reach the user's app; capture stays bounded.

Failures are injected into every layer on the request path: the LangChain callback handler,
the LlamaIndex span/event handlers (through their Recorder), and the RunSpanProcessor. The
host app (a real LangChain chain, a real LlamaIndex query engine, FakeApp) must return
exactly what it returns without tg_bridge, and the failures must be counted on the Run.
"""

from __future__ import annotations

import gc
import inspect
import threading
import tracemalloc
import types
from typing import Any

import pytest

from tg_bridge.capturing import capture, span_processor
from tg_bridge.testing import FakeApp


class Boom(RuntimeError):
    pass


def _raise(*_a: Any, **_k: Any) -> Any:
    raise Boom("injected failure")


#: The error reporting path itself stays intact (it is what the tests observe).
_KEEP = {"record_hook_error", "current_run", "is_internal"}


def break_helpers(monkeypatch, module: types.ModuleType, package: str) -> list[str]:
    """Replace every function the module defines or imports from ``package`` by a raiser."""
    broken = []
    for name, value in list(vars(module).items()):
        if name in _KEEP:
            continue
        if inspect.isfunction(value) and (value.__module__ or "").startswith(package):
            monkeypatch.setattr(module, name, _raise)
            broken.append(name)
    return broken


class BrokenTracer:
    def start_span(self, *a: Any, **k: Any) -> Any:
        raise Boom("tracer down")

    start_as_current_span = start_span


@pytest.fixture(autouse=True)
def real_adapters():
    """capture() instruments once per process: if an earlier test left a fake adapter list
    instrumented, start over so the real LangChain/LlamaIndex adapters get installed."""
    from tg_bridge.capturing import instrumentation

    if instrumentation._active is not None and not {"langchain", "llamaindex"} & set(
            instrumentation.instrumented()):
        instrumentation.uninstrument()
    yield


# -- LangChain ---------------------------------------------------------------------------------

def _lc_chain():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda

    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "Q: {q}")])
    model = FakeListChatModel(responses=["an answer"] * 1000)
    shout = RunnableLambda(lambda text: text.upper(), name="shout")
    return prompt | model | StrOutputParser() | shout


def _lc_handler():
    from tg_bridge_langchain import hooks

    handler = hooks.installed_handler()
    assert handler is not None, "capture() did not install the LangChain handler"
    return handler


@pytest.mark.parametrize("failure", ["tracer", "helpers", "both"])
async def test_langchain_handler_failures_never_reach_the_chain(monkeypatch, failure):
    chain = _lc_chain()
    expected = chain.invoke({"q": "x"})
    from tg_bridge_langchain import handler as handler_mod

    with capture("lc") as run:
        handler = _lc_handler()
        if failure in ("tracer", "both"):
            monkeypatch.setattr(handler, "tracer", BrokenTracer())
        if failure in ("helpers", "both"):
            assert break_helpers(monkeypatch, handler_mod, "tg_bridge_langchain")
        assert chain.invoke({"q": "x"}) == expected
        assert await chain.ainvoke({"q": "y"}) == expected
        assert chain.batch([{"q": "a"}, {"q": "b"}]) == [expected, expected]
        assert "".join(chain.stream({"q": "s"})) == expected
    assert run.hook_errors > 0, "the failures were swallowed without being counted"
    assert handler._spans == {}, "a failing hook leaked open spans"


def test_langchain_chain_errors_still_propagate_unchanged(monkeypatch):
    """Our hooks failing must not turn the app's own exception into something else."""
    from langchain_core.runnables import RunnableLambda

    def bad(_):
        raise KeyError("the app's own error")

    chain = _lc_chain() | RunnableLambda(bad)
    with capture("lc") as run:
        monkeypatch.setattr(_lc_handler(), "tracer", BrokenTracer())
        with pytest.raises(KeyError, match="the app's own error"):
            chain.invoke({"q": "x"})
    assert run.hook_errors > 0


# -- LlamaIndex --------------------------------------------------------------------------------

def _li_engine():
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    docs = [Document(text=f"Fact {i}: the sky is colour {i}.") for i in range(3)]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    return index.as_query_engine(llm=MockLLM(max_tokens=5), similarity_top_k=2)


@pytest.mark.parametrize("failure", ["tracer", "helpers", "both"])
async def test_llamaindex_handler_failures_never_reach_the_query_engine(monkeypatch, failure):
    engine = _li_engine()
    expected = str(engine.query("what colour?"))
    from tg_bridge_llamaindex import handlers
    from tg_bridge_llamaindex import recorder as recorder_mod

    with capture("li") as run:
        rec = handlers.installed()
        assert rec is not None, "capture() did not install the LlamaIndex handlers"
        if failure in ("tracer", "both"):
            monkeypatch.setattr(rec, "tracer", BrokenTracer())
        if failure in ("helpers", "both"):
            assert break_helpers(monkeypatch, recorder_mod, "tg_bridge_llamaindex")
            from tg_bridge_llamaindex import attributes

            for name, value in list(vars(attributes).items()):
                if inspect.isfunction(value) and value.__module__ == attributes.__name__:
                    monkeypatch.setattr(attributes, name, _raise)
        assert str(engine.query("what colour?")) == expected
        assert str(await engine.aquery("what colour?")) == expected
    assert run.hook_errors > 0, "the failures were swallowed without being counted"


# -- the span processor ------------------------------------------------------------------------

def test_span_processor_failures_never_reach_a_framework_free_app(monkeypatch):
    app = FakeApp("Answer {q}", lambda prompt: prompt.upper())
    proc = span_processor()
    monkeypatch.setattr(proc, "_to_record", _raise)
    from tg_bridge.capturing import processor as processor_mod

    monkeypatch.setattr(processor_mod, "context_run", _raise)
    monkeypatch.setattr(processor_mod, "is_internal", _raise)
    with capture("fake", instrument=False) as run:
        for i in range(5):
            assert app.invoke({"q": f"w{i}"}) == f"ANSWER W{i}"
    assert run.hook_errors >= 5 or proc.errors >= 5


# -- memory over 10,000 captured runs ------------------------------------------------------------

def _captured_runs(app: FakeApp, n: int) -> None:
    for i in range(n):
        with capture("mem", instrument=False) as run:
            app.invoke({"q": f"w{i % 50}"})
        assert len(run.spans) == 3  # every run really captured its spans


def test_ten_thousand_captured_runs_keep_memory_bounded():
    """After a warm-up, 10,000 more capture() blocks (3 spans each, ~1 kB of attributes)
    must not grow traced memory by more than 2 MB: ~200 bytes per run, far below what
    keeping even one span record per run would cost (>1 kB). Anything a finished Run
    leaves behind (processor maps, bindings, ContextVar tokens) would show up here."""
    app = FakeApp("Answer the question {q} in one word, please.", lambda p: p[::-1])
    _captured_runs(app, 1000)  # warm-up: caches, LRU maps, interned strings
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        _captured_runs(app, 10_000)
        gc.collect()
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = end - start
    print(f"10,000 runs: growth {growth / 1e6:.2f} MB, peak {(peak - start) / 1e6:.2f} MB")
    assert growth < 2_000_000, f"memory grew by {growth} bytes over 10,000 runs"
    assert span_processor().open_span_count() == 0


# -- a locked run store never blocks the host (issue 11 item 8) --------------------------------

class StoreLock:
    """Another connection holding the store's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, path: str) -> None:
        import sqlite3

        from tg_bridge.store import RunStore

        RunStore(path).runs()  # create the schema first
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def _host_calls(fn: Any, n: int) -> tuple[threading.Event, list[Any]]:
    """Call ``fn(i)`` n times on another thread; the event is set once all returned."""
    done, results = threading.Event(), []

    def work() -> None:
        for i in range(n):
            results.append(fn(i))
        done.set()

    threading.Thread(target=work, daemon=True).start()
    return done, results


# Far below the store's 30 s busy timeout: a host call that waited on SQLite would still be
# stuck when this bound passes. Only an upper bound on a wait, never a timing assertion.
_BOUND = 20.0


def test_host_calls_return_while_another_connection_holds_the_write_lock(tmp_path):
    import tg_bridge
    from tg_bridge.store import RunStore

    path = str(tmp_path / "runs.db")
    app = FakeApp("Answer {q}", lambda prompt: prompt.upper())

    @tg_bridge.optimizable(store=path)
    def answer(i: int) -> str:
        return app.invoke({"q": f"w{i}"})

    lock = StoreLock(path)
    try:
        done, results = _host_calls(answer, 5)
        finished_while_locked = done.wait(_BOUND)
        stored_while_locked = len(RunStore(path).captures())  # WAL: readers still read
    finally:
        lock.release()
    assert finished_while_locked, "a host call waited on the locked run store"
    assert results == [f"ANSWER W{i}" for i in range(5)]
    assert stored_while_locked == 0  # nothing could be written yet...
    assert answer.flush(60)
    caps = RunStore(path).captures(answer.recorder.source)
    assert [c.output for c in caps] == [f"ANSWER W{i}" for i in range(5)]  # ...and all came later
    assert answer.recorder.dropped == 0 and answer.recorder.errors == 0


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    import tg_bridge
    from tg_bridge.store import RunStore

    path = str(tmp_path / "runs.db")

    @tg_bridge.optimizable(store=path, max_pending=2)
    def echo(i: int) -> int:
        return i

    lock = StoreLock(path)
    try:
        done, results = _host_calls(echo, 10)
        finished_while_locked = done.wait(_BOUND)
        # at most one record in the writer's hands and two queued: the rest were dropped
        dropped_while_locked = echo.recorder.dropped
    finally:
        lock.release()
    assert finished_while_locked and results == list(range(10))
    assert dropped_while_locked >= 7
    assert echo.flush(60)
    stored = len(RunStore(path).captures(echo.recorder.source))
    assert stored == echo.recorder.recorded
    assert stored + echo.recorder.dropped == 10


def test_close_gives_up_on_a_locked_store_instead_of_hanging(tmp_path):
    import tg_bridge
    from tg_bridge.store import RunStore

    path = str(tmp_path / "runs.db")

    @tg_bridge.optimizable(store=path)
    def echo(i: int) -> int:
        return i

    lock = StoreLock(path)
    try:
        done, _ = _host_calls(echo, 3)
        assert done.wait(_BOUND)
        assert echo.recorder.close(timeout=0.2) is False  # pending records, bounded wait
        assert echo(99) == 99  # still served after close; the record is dropped, counted
        assert echo.recorder.dropped == 1
    finally:
        lock.release()
    assert echo.flush(60)  # what was pending before close is still written
    assert len(RunStore(path).captures(echo.recorder.source)) == 3


def test_pending_records_are_written_at_interpreter_exit(tmp_path):
    """The atexit flush: a process that records and exits at once still stores the call."""
    import subprocess
    import sys
    from pathlib import Path

    from tg_bridge.store import RunStore

    path = str(tmp_path / "runs.db")
    code = (
        "import tg_bridge\n"
        f"@tg_bridge.optimizable(store={path!r})\n"
        "def f(x):\n    return x\n"
        "for i in range(20):\n    f(i)\n"
    )
    root = Path(__file__).parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=root)
    assert len(RunStore(path).captures()) == 20


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_worker_keeps_recording(tmp_path):
    """gunicorn-style: the parent recorded (so its writer thread exists), then forked; the
    child's calls are still stored (a writer thread that did not survive the fork must not
    leave the child's queue undrained)."""
    import os

    import tg_bridge
    from tg_bridge.store import RunStore

    path = str(tmp_path / "runs.db")

    @tg_bridge.optimizable(store=path)
    def echo(i: int) -> int:
        return i

    echo(0)
    assert echo.flush(60)
    pid = os.fork()
    if pid == 0:  # the child: record, flush, report through the exit status
        code = 1
        try:
            for i in range(1, 4):
                echo(i)
            code = 0 if echo.flush(60) and echo.recorder.recorded >= 3 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    outputs = sorted(c.output for c in RunStore(path).captures(echo.recorder.source))
    assert outputs == ["0", "1", "2", "3"]
