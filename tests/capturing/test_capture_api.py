"""instrument()/uninstrument(), bindings and hook errors, Run.graph()/graphs(), display."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

import tg_bridge
import tg_bridge.adapters
from tg_bridge import capture  # the public block: its Run also rebuilds graphs
from tg_bridge.capturing import (
    Run,
    instrument,
    instrumented,
    record_hook_error,
    register_binding,
    tracer_provider,
    uninstrument,
)
from tg_bridge.patching.binding import CallableBinding


class FakeAdapter:
    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.instrument_calls: list[object] = []
        self.uninstrument_calls = 0

    def instrument(self, provider: object) -> None:
        self.instrument_calls.append(provider)
        if self.fail:
            raise RuntimeError("host framework missing a hook")

    def uninstrument(self) -> None:
        self.uninstrument_calls += 1
        if self.fail:
            raise RuntimeError("cannot uninstrument")


@pytest.fixture
def adapters(monkeypatch):
    found = [FakeAdapter("broken", fail=True), FakeAdapter("good")]
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: list(found))
    return found


def test_instrument_is_idempotent_and_skips_failing_adapters(adapters):
    broken, good = adapters
    assert instrument() == ["good"]
    assert instrument() == ["good"]
    assert good.instrument_calls == [tracer_provider()]
    assert len(broken.instrument_calls) == 1
    assert instrumented() == ["good"]
    uninstrument()
    uninstrument()
    assert good.uninstrument_calls == 1 and broken.uninstrument_calls == 0
    assert instrumented() == []
    assert instrument() == ["good"]  # can be installed again after removal
    assert len(good.instrument_calls) == 2


def test_instrument_from_many_threads_installs_once(adapters):
    good = adapters[1]
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait(120)  # generous: starting 8 threads on a loaded machine is not a hang
        instrument()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert len(good.instrument_calls) == 1


def test_capture_instruments_on_demand(adapters):
    good = adapters[1]
    with capture(instrument=False):
        pass
    assert good.instrument_calls == []
    with capture():
        pass
    with capture():
        pass
    assert len(good.instrument_calls) == 1


def test_uninstrument_failure_does_not_raise(monkeypatch):
    bad = FakeAdapter("bad")
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [bad])
    instrument()
    bad.fail = True
    uninstrument()  # logged, not raised
    assert bad.uninstrument_calls == 1


def test_register_binding_goes_to_the_current_run():
    value = {"text": "You are terse."}
    binding = CallableBinding("app:system", lambda: value["text"], lambda v: value.update(text=v))
    register_binding(binding)  # no run: no-op, no error
    with capture(instrument=False) as outer:
        with capture(instrument=False) as inner:
            register_binding(binding)
        register_binding(CallableBinding("app:other", str, print))
    assert list(inner.bindings) == ["app:system"] and inner.bindings["app:system"] is binding
    assert list(outer.bindings) == ["app:other"]


def test_malformed_binding_and_hook_errors_are_counted_not_raised(caplog):
    caplog.set_level(logging.DEBUG, logger="tg_bridge")
    with capture(instrument=False) as run:
        register_binding(object())  # type: ignore[arg-type]
        try:
            raise KeyError("callback bug")
        except KeyError as exc:
            record_hook_error(exc, where="on_llm_start")
    assert run.hook_errors == 2 and run.bindings == {}
    assert any("on_llm_start" in r.getMessage() for r in caplog.records)
    record_hook_error(RuntimeError("no run"))  # outside a run: logged only


def test_explicit_run_argument_wins():
    other = Run("explicit")
    with capture(instrument=False) as run:
        register_binding(CallableBinding("k", str, print), run=other)
        record_hook_error(RuntimeError("x"), run=other)
    assert list(other.bindings) == ["k"] and other.hook_errors == 1
    assert run.bindings == {} and run.hook_errors == 0


@pytest.fixture
def fake_reconstruct(monkeypatch):
    calls: list[dict] = []

    def reconstruct(spans, *, bindings=None, parameters=None, one_flow=False):
        calls.append({"spans": list(spans), "bindings": bindings, "parameters": parameters,
                      "one_flow": one_flow})
        return tg_bridge.Graph([tg_bridge.Variable("out", role="output")])

    import tg_bridge.reconstruction.live

    monkeypatch.setattr(tg_bridge.reconstruction.live, "reconstruct", reconstruct)
    return calls


def test_graph_and_graphs_call_reconstruct(fake_reconstruct, tracer):
    binding = CallableBinding("app:system", str, print)
    with capture("two-traces", instrument=False) as run:
        register_binding(binding)
        with tracer.start_as_current_span("t1"):
            pass
        with tracer.start_as_current_span("t2"):
            pass
    graph = run.graph()
    assert graph.metadata["run_id"] == run.id and graph.metadata["run_name"] == "two-traces"
    assert [s.name for s in fake_reconstruct[0]["spans"]] == ["t1", "t2"]
    assert fake_reconstruct[0]["bindings"] == {"app:system": binding}
    assert fake_reconstruct[0]["one_flow"] is True  # one capture block = one app run
    fake_reconstruct.clear()
    graphs = run.graphs()
    assert len(graphs) == 2
    assert [[s.name for s in c["spans"]] for c in fake_reconstruct] == [["t1"], ["t2"]]
    assert not any(c["one_flow"] for c in fake_reconstruct)
    pools = [c["parameters"] for c in fake_reconstruct]
    assert pools[0] is pools[1] and isinstance(pools[0], dict)  # one pool shared by traces
    fake_reconstruct.clear()
    shared: dict = {}
    run.graphs(parameters=shared)
    assert all(c["parameters"] is shared for c in fake_reconstruct)


def test_run_html_is_escaped(tracer):
    with capture("<script>alert(1)</script>", instrument=False) as run:
        with tracer.start_as_current_span("<b>span</b>"):
            pass
    page = run._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;span&lt;/b&gt;" in page
    assert run.trace_ids() == [run.spans[0].trace_id]


def test_top_level_exports():
    from tg_bridge import Run as TopRun
    from tg_bridge import instrument as top_instrument

    # tg_bridge.Run is the captured Run that can also rebuild its graph
    assert issubclass(TopRun, Run) and hasattr(TopRun, "graph") and not hasattr(Run, "graph")
    assert top_instrument is instrument


@pytest.mark.parametrize("first", ["import tg_bridge.capturing", "tg_bridge.capture",
                                   "tg_bridge.load_traces", "import tg_bridge.reconstruction"])
def test_capture_and_reconstruct_stay_functions_in_any_import_order(first):
    import subprocess
    import textwrap

    code = textwrap.dedent(
        f"""
        import tg_bridge
        {first}
        import tg_bridge.capturing
        from tg_bridge.reconstruction.live import capture
        with tg_bridge.capture("a", instrument=False) as run:
            pass
        assert run.name == "a" and run.ended is not None and run.graph() is not None
        assert tg_bridge.capture is capture
        import types
        assert isinstance(tg_bridge.capture, types.FunctionType)
        assert isinstance(tg_bridge.reconstruct, types.FunctionType)
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
