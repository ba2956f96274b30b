"""A patch changing two messages of one chat prompt is seen whole by concurrent host calls
(issue 11 item 9: 39 of 480 calls saw the system and human messages of different versions).

Threads format the prompt (through a chain, as the app does) while the main thread applies
and reverts a two-message patch; every formatted call must carry ONE version. No timing: a
barrier starts everyone together, the writer waits for new reader calls after each apply and
revert (a condition on a counter), readers stop on an event; a tiny switch interval makes
thread switches between the two writes likely.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from tg_bridge_langchain import adapter

import tg_bridge
from tg_bridge.patching.apply import patch_between

OLD = ("System version A.", "Human version A: {q}")
NEW = ("System version B.", "Human version B: {q}")
CYCLES = 300
READERS = 4


def _versions(messages) -> tuple[str, str]:
    return messages[0].content[-2], messages[1].content.split(":")[0][-1]


@pytest.fixture()
def fast_switching():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _two_message_patch(prompt):
    bindings = adapter.bindings(prompt)
    originals = {b.key: b.read() for b in bindings}
    values = dict(zip(originals, NEW))
    return patch_between(originals, values)


def test_concurrent_calls_never_see_a_mixed_patch(fast_switching):
    prompt = ChatPromptTemplate.from_messages([("system", OLD[0]), ("human", OLD[1])])
    chain = prompt | RunnableLambda(lambda value: _versions(value.to_messages()))
    patch = _two_message_patch(prompt)
    start = threading.Barrier(READERS + 1)
    stop = threading.Event()
    progress = threading.Condition()
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def record(version: tuple[str, str]) -> None:
        with progress:
            seen.append(version)
            progress.notify_all()

    def reader() -> None:
        start.wait()
        try:
            while not stop.is_set():
                record(chain.invoke({"q": "x"}))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    async def async_reader() -> None:
        while not stop.is_set():
            value = await prompt.ainvoke({"q": "y"})
            record(_versions(value.to_messages()))
            await asyncio.sleep(0)

    def calls_after(count: int) -> None:
        # the writer goes on only after the readers made more calls: they run during the
        # writes by construction, not by timing (the timeout only guards a hung reader)
        with progress:
            assert progress.wait_for(lambda: len(seen) > count or errors, timeout=60)

    threads = [threading.Thread(target=reader) for _ in range(READERS - 1)]
    threads.append(threading.Thread(target=lambda: (start.wait(), asyncio.run(async_reader()))))
    for t in threads:
        t.start()
    start.wait()
    try:
        for _ in range(CYCLES):
            applied = tg_bridge.apply_patch(prompt, patch)
            calls_after(len(seen))
            applied.revert()
            calls_after(len(seen))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    assert len(seen) >= 2 * CYCLES
    mixed = [v for v in seen if v[0] != v[1]]
    assert len(mixed) == 0, f"{len(mixed)} of {len(seen)} calls saw a mixed patch"
    assert {v[0] for v in seen} == {"A", "B"}
    assert prompt.messages[0].prompt.template == OLD[0]
