"""A patch changing two messages of one chat prompt is seen whole by concurrent host calls
(issue 11 item 9: 39 of 480 calls saw the system and human messages of different versions).

Threads format the prompt (through a chain, as the app does) and an event loop formats it
asynchronously while the main thread applies and reverts a two-message patch; every
formatted call must carry ONE version. The race (barrier, writer waiting for new calls after
each write, no timing) is tests/support/concurrent_patch.py, shared with the LlamaIndex test.
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from tg_bridge_langchain import adapter

import tg_bridge
from tests.support.concurrent_patch import fast_switching, race
from tg_bridge.patching.apply import patch_between

OLD = ("System version A.", "Human version A: {q}")
NEW = ("System version B.", "Human version B: {q}")
CYCLES = 300


def _versions(messages) -> tuple[str, str]:
    return messages[0].content[-2], messages[1].content.split(":")[0][-1]


def _two_message_patch(prompt):
    bindings = adapter.bindings(prompt)
    originals = {b.key: b.read() for b in bindings}
    values = dict(zip(originals, NEW))
    return patch_between(originals, values)


def test_concurrent_calls_never_see_a_mixed_patch():
    prompt = ChatPromptTemplate.from_messages([("system", OLD[0]), ("human", OLD[1])])
    chain = prompt | RunnableLambda(lambda value: _versions(value.to_messages()))
    patch = _two_message_patch(prompt)

    def call() -> tuple[str, ...]:
        return chain.invoke({"q": "x"})

    async def acall() -> tuple[str, ...]:
        return _versions((await prompt.ainvoke({"q": "y"})).to_messages())

    with fast_switching():
        result = race(call, acall, lambda: tg_bridge.apply_patch(prompt, patch), lambda p: p.revert(), cycles=CYCLES)
    assert not result.errors
    assert len(result.seen) >= 2 * CYCLES
    assert len(result.mixed) == 0, f"{len(result.mixed)} of {len(result.seen)} calls saw a mixed patch"
    assert result.versions == {"A", "B"}
    assert prompt.messages[0].prompt.template == OLD[0]
