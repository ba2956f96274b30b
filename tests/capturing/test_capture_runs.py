"""capture(): which Run gets which span (nesting, tasks, threads, lost context)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from tg_bridge import semconv
from tg_bridge.capturing import Run, capture, current_run, span_processor
from tg_bridge.exceptions import CaptureError


def names(run: Run) -> list[str]:
    return [s.name for s in run.spans]


def test_spans_become_records_with_run_id(tracer):
    with capture("basic", instrument=False) as run:
        with tracer.start_as_current_span("parent", attributes={"input.value": "q"}) as parent:
            with tracer.start_as_current_span("child") as child:
                child.add_event("token", {"n": 1})
                child.set_attribute("tags", ["a", "b"])
            parent.set_status(Status(StatusCode.ERROR, "boom"))
    assert run.name == "basic" and len(run.id) == 32
    assert names(run) == ["child", "parent"]  # end order
    child_rec, parent_rec = run.spans
    assert child_rec.parent_id == parent_rec.span_id
    assert parent_rec.parent_id is None
    assert len(child_rec.trace_id) == 32 and len(child_rec.span_id) == 16
    assert int(child_rec.span_id, 16) == child.get_span_context().span_id
    assert child_rec.attributes[semconv.RUN_ID] == run.id
    assert child_rec.attributes["tags"] == ("a", "b")
    assert child_rec.events[0]["name"] == "token" and child_rec.events[0]["attributes"] == {"n": 1}
    assert parent_rec.status == "ERROR" and child_rec.status == "UNSET"
    assert parent_rec.attributes["input.value"] == "q"
    assert child_rec.end_ns >= child_rec.start_ns > 0
    assert run.ended is not None and run.ended >= run.started


def test_nothing_is_kept_outside_a_capture_block(tracer):
    with tracer.start_as_current_span("outside"):
        assert current_run() is None
    with capture(instrument=False) as run:
        pass
    with tracer.start_as_current_span("after"):
        pass
    assert run.spans == []
    assert span_processor().open_span_count() == 0


def test_nested_captures_innermost_wins(tracer):
    with capture("outer", instrument=False) as outer:
        with tracer.start_as_current_span("o1"):
            pass
        with capture("inner", instrument=False) as inner:
            assert current_run() is inner
            with tracer.start_as_current_span("i1"):
                pass
        assert current_run() is outer
        with tracer.start_as_current_span("o2"):
            pass
    assert current_run() is None
    assert names(outer) == ["o1", "o2"]
    assert names(inner) == ["i1"]


async def test_concurrent_tasks_keep_runs_apart(tracer):
    async def work(label: str) -> Run:
        async with capture(label, instrument=False) as run:
            for i in range(5):
                with tracer.start_as_current_span(f"{label}-{i}"):
                    await asyncio.sleep(0.001)  # interleave with the other task
        return run

    a, b = await asyncio.gather(work("a"), work("b"))
    assert names(a) == [f"a-{i}" for i in range(5)]
    assert names(b) == [f"b-{i}" for i in range(5)]


async def test_gather_inside_one_capture_goes_to_that_run(tracer):
    async def step(i: int) -> None:
        with tracer.start_as_current_span(f"s{i}"):
            await asyncio.sleep(0)

    async with capture("batch", instrument=False) as run:
        await asyncio.gather(*(step(i) for i in range(4)))
    assert sorted(names(run)) == ["s0", "s1", "s2", "s3"]


def test_thread_pool_with_copied_context(tracer):
    def job(i: int) -> None:
        with tracer.start_as_current_span(f"job{i}"):
            pass

    with capture("pool", instrument=False) as run, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(contextvars.copy_context().run, job, i) for i in range(8)]
        for f in futures:
            f.result()
    assert sorted(names(run)) == sorted(f"job{i}" for i in range(8))


def test_thread_that_lost_context_inherits_from_parent_span(tracer):
    seen: list[Run | None] = []

    def raw_thread(parent_ctx) -> None:
        assert current_run() is None  # the ContextVar did not follow
        with tracer.start_as_current_span("lost-child", context=parent_ctx):
            seen.append(current_run())  # found again through the open parent span
            with tracer.start_as_current_span("grandchild"):
                pass

    with capture("threads", instrument=False) as run:
        with tracer.start_as_current_span("parent") as parent:
            ctx = trace_api.set_span_in_context(parent)
            t = threading.Thread(target=raw_thread, args=(ctx,))
            t.start()
            t.join(60)
        # a thread without context and without a parent span records nothing
        t2 = threading.Thread(target=lambda: tracer.start_span("orphan").end())
        t2.start()
        t2.join(60)
    assert names(run) == ["grandchild", "lost-child", "parent"]
    assert seen == [run]
    assert all(s.attributes[semconv.RUN_ID] == run.id for s in run.spans)


def test_child_started_after_parent_ended_still_attached(tracer):
    with capture("late", instrument=False) as run:
        parent = tracer.start_span("parent")
        ctx = trace_api.set_span_in_context(parent)
        parent.end()

    def later() -> None:
        tracer.start_span("late-child", context=ctx).end()

    t = threading.Thread(target=later)
    t.start()
    t.join(60)
    assert names(run) == ["parent", "late-child"]


def test_capture_block_is_single_use_and_exceptions_propagate(tracer):
    block = capture(instrument=False)
    with pytest.raises(RuntimeError, match="app failed"):
        with block as run:
            with tracer.start_as_current_span("failing"):
                raise RuntimeError("app failed")
    assert names(run) == ["failing"]
    assert run.spans[0].status == "ERROR"  # the SDK records the exception
    assert current_run() is None
    with pytest.raises(CaptureError):
        with block:
            pass


def test_default_run_name_and_repr(tracer):
    with capture(instrument=False) as run:
        assert "open" in repr(run)
        with tracer.start_as_current_span("x"):
            pass
    assert run.name == f"run-{run.id[:8]}"
    text = repr(run)
    assert "1 spans in 1 traces" in text and run.name in text
