"""The corpus harness: a loopback "model" that follows one instruction, an optimizer engine
that proposes that instruction, and the checks every corpus app must pass.

The stub model (:func:`respond`) answers like a small assistant; it calls the first offered
tool once when the last message is the user's, and it ends its answer with ``DONE`` only
when one of the messages it received contains :data:`INSTRUCTION`. The metric rewards an
answer that ends with ``DONE``, so the baseline scores 0 and the candidate that adds the
instruction to the right prompt scores 1: a strictly better candidate, not a tie.

The backward engine (:func:`improving_engine`) proposes ``old + " " + INSTRUCTION`` for the
one prompt the app names as its target and the unchanged value for every other prompt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from typing import Any

from tg_bridge_langchain import adapter

import tg_bridge
from tests.support.openai_stub import OpenAIStub, last_user_text, message_texts, tool_call
from tg_bridge.patching.patch import Patch
from tg_bridge.testing import FakeEngine

INSTRUCTION = "Always end the reply with the word DONE."
FEEDBACK = "The reply misses its closing marker; the prompt should ask for it."


def respond(request: dict[str, Any]) -> Any:
    """The stub model's answer to one chat-completions request."""
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    tools = request.get("tools") or []
    if tools and last.get("role") == "user":
        return tool_call(tools[0]["function"]["name"], {"city": "Paris"})
    if last.get("role") == "tool":
        answer = f"The tool says: {last.get('content')}."
    else:
        answer = f"Here is my answer about {last_user_text(request)[:40]!r}."
    if any(INSTRUCTION in text for text in message_texts(request)):
        answer += " DONE"
    return answer


def metric_for(answer_of: Callable[[str], str]) -> Callable[[Any, Any], tuple[float, str]]:
    """The metric: 1 when the app's answer (``answer_of(output text)``) ends with DONE."""

    def metric(example: Any, output: Any) -> tuple[float, str]:
        ok = answer_of(str(output)).rstrip().endswith("DONE")
        return (1.0, "good") if ok else (0.0, FEEDBACK)

    return metric


def improving_engine(target_text: str) -> FakeEngine:
    """Proposes ``target_text + " " + INSTRUCTION`` for the prompt whose current value is
    ``target_text``; keeps every other prompt as it is."""

    def answer(messages: list[dict[str, str]], response_format: Any) -> Any:
        if "improved_value" in str(response_format):
            found = re.search(r"<current_value>\n(.*?)\n</current_value>",
                              messages[-1]["content"], re.DOTALL)
            current = found.group(1) if found else ""
            return {"improved_value": f"{current} {INSTRUCTION}" if current == target_text
                    else current}
        return "Ask for the closing marker DONE at the end of every reply."

    return FakeEngine(answer)


@dataclasses.dataclass
class CorpusApp:
    """One app of the corpus, as its tutorial writes it.

    ``build(model)`` makes a fresh instance around a chat model; ``run(app, question)`` calls
    it the app's own way (sync) and ``arun`` the async way, both returning the answer text;
    ``expected`` are the prompt texts capture must find; ``target`` the one the optimizer
    changes; ``examples(questions)`` the trainset; ``optimize_kwargs`` extra arguments.
    """

    name: str
    build: Callable[[Any], Any]
    run: Callable[[Any, str], str]
    arun: Callable[[Any, str], Any]
    expected: tuple[str, ...]
    target: str
    examples: Callable[[list[str]], list[Any]]
    optimize_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the answer inside the output text optimize() hands the metric (e.g. one field of a
    #: LangGraph state, which arrives as JSON)
    answer_of: Callable[[str], str] = lambda text: text


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def messages_agent(name: str, build: Callable[[Any], Any], system: str) -> CorpusApp:
    """An agent called the LangGraph way (``{"messages": [user message]}`` in, the last
    message's text out) whose system prompt ``system`` is what capture finds and the target."""
    return CorpusApp(
        name=name,
        build=build,
        run=lambda app, q: app.invoke(_user_message(q))["messages"][-1].content,
        arun=lambda app, q: _last_message(app.ainvoke(_user_message(q))),
        expected=(system,),
        target=system,
        examples=lambda questions: [{"inputs": _user_message(q)} for q in questions],
    )


def _user_message(question: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


async def _last_message(pending: Any) -> str:
    return (await pending)["messages"][-1].content


def chat_model(stub: OpenAIStub, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="test-key",
                      max_retries=0, **kwargs)


def live_texts(app: Any) -> dict[str, str]:
    return {b.key: b.read() for b in adapter.bindings(app)}


def check_app(spec: CorpusApp, stub: OpenAIStub, store: str) -> None:
    """Every check of issue 12 for one app (see the module docstring)."""
    app = spec.build(chat_model(stub))
    new_text = f"{spec.target} {INSTRUCTION}"

    # capture finds the expected parameters, bound to the live app
    with tg_bridge.capture() as run:
        assert not spec.run(app, "warm up").endswith("DONE")
    params = [p for graph in run.graphs() for p in graph.parameters()]
    bound = {p.value for p in params if p.binding is not None}
    missing = [text for text in spec.expected if text not in bound]
    assert not missing, f"{spec.name}: capture did not bind {missing}; bound: {sorted(bound)}"

    # optimize changes the live prompt (the candidate is strictly better)
    originals = live_texts(app)
    assert spec.target in originals.values()
    result = tg_bridge.optimize(
        app, spec.examples(["What is the weather in Paris?", "Is it cold?"]), metric=metric_for(spec.answer_of),
        backward_engine=improving_engine(spec.target), progress=False, store=store,
        batch_size=2, **spec.optimize_kwargs)
    assert (result.baseline_score, result.best_score) == (0.0, 1.0), result
    changed = {k: v for k, v in live_texts(app).items() if v != originals[k]}
    assert list(changed.values()) == [new_text], changed

    # the app still runs its own way, sync and async, and the model receives the new text
    stub.reset()
    assert spec.run(app, "And tomorrow?").endswith("DONE")
    assert asyncio.run(spec.arun(app, "And the day after?")).endswith("DONE")
    assert stub.saw(_literal_tail(new_text))

    # revert restores every prompt byte for byte
    saved = result.best_patch.to_json()
    assert result.best_patch.applied  # the live patch
    result.best_patch.revert()
    assert live_texts(app) == originals
    assert not spec.run(app, "After revert?").endswith("DONE")

    # the saved patch applies to a freshly built instance, onto the same prompt
    fresh = spec.build(chat_model(stub))
    # every prompt has a stable path, the same in a fresh instance, unique in the app
    paths = [b.app_path for b in adapter.bindings(app)]
    assert all(paths) and len(set(paths)) == len(paths)
    assert [b.app_path for b in adapter.bindings(fresh)] == paths
    before = live_texts(fresh)
    applied = tg_bridge.apply_patch(fresh, Patch.from_json(saved))
    after = live_texts(fresh)
    assert {k: v for k, v in after.items() if v != before[k]} == {
        k: new_text for k, v in before.items() if v == spec.target
    }
    stub.reset()
    assert spec.run(fresh, "Fresh instance?").endswith("DONE")
    assert stub.saw(_literal_tail(new_text))
    applied.revert()
    assert live_texts(fresh) == before


def _literal_tail(template: str) -> str:
    """The text after a template's last placeholder: what the model receives verbatim."""
    return template.rsplit("}", 1)[-1].strip()
