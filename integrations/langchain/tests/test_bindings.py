"""Live prompt bindings: discovery through the runnable graph, write-back, revert, copies."""

from __future__ import annotations

import copy
import json

import lc_apps
import pytest
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, FewShotPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableBranch, RunnableLambda
from tg_bridge_langchain import adapter

import tg_bridge
from tg_bridge import semconv as sc
from tg_bridge.exceptions import BindingError


def snapshot(prompt):
    from langchain_core.load import dumpd

    return json.dumps(dumpd(prompt), sort_keys=True) + repr(prompt)


def test_write_reaches_the_next_invoke_and_revert_is_exact(instrumented):
    chain, parts = lc_apps.make_rag()
    model = parts["model"]
    answer_prompt = parts["answer_prompt"]
    bindings = {b.key: b for b in adapter.bindings(chain)}
    before = snapshot(answer_prompt)  # after discovery: it tags the prompt's metadata
    assert len(bindings) == 4
    system = [b for b in bindings.values() if b.root is answer_prompt and b.role == "system"][0]
    original = system.read()
    assert original == lc_apps.ANSWER_SYSTEM

    new_text = "Reply in one sentence, citing the context.\nContext:\n{context}"
    system.write(new_text)
    chain.invoke({"question": "What is the capital of France?"})
    sent = [str(m[0].content) for m in model.requests if "Context" in str(m[0].content)]
    assert sent[-1].startswith("Reply in one sentence, citing the context.\nContext:\nParis")
    # tracers see the new text too (the cached serialization was dropped)
    assert "Reply in one sentence" in json.dumps(answer_prompt._serialized)
    with tg_bridge.capture() as run:
        chain.invoke({"question": "What is the capital of France?"})
    records = [r for s in run.spans for r in json.loads(s.attributes.get(sc.TEMPLATES, "[]"))]
    assert new_text in [r["template"] for r in records]

    system.write(original)
    assert system.read() == original
    assert snapshot(answer_prompt) == before  # byte for byte, input_variables included
    chain.invoke({"question": "What is the capital of France?"})
    assert str(model.requests[-1][0].content).startswith("Answer using only the context.")


def test_write_keeps_input_variables_consistent():
    prompt = ChatPromptTemplate.from_messages([("system", "Be {tone}."), ("human", "{q}")])
    (system, human) = adapter.bindings(prompt)
    system.write("Be {tone} and {style}.")
    assert prompt.input_variables == ["q", "style", "tone"]
    assert prompt.messages[0].prompt.input_variables == ["style", "tone"]
    assert prompt.invoke({"q": "x", "tone": "warm", "style": "short"}).to_messages()[0].content == (
        "Be warm and short."
    )
    system.write("Be {tone}.")
    assert prompt.input_variables == ["q", "tone"]
    with pytest.raises(BindingError):
        human.write(42)  # type: ignore[arg-type]


def test_prompt_template_fixed_message_and_few_shot_writes():
    plain = PromptTemplate.from_template("Summarize {text}")
    (binding,) = adapter.bindings(plain)
    assert binding.key.endswith("/template") and binding.template_format == "f-string"
    binding.write("Summarize briefly: {text}")
    assert plain.format(text="t") == "Summarize briefly: t"

    fixed = ChatPromptTemplate.from_messages([SystemMessage(content="Be brief."), ("human", "{q}")])
    sys_binding = adapter.bindings(fixed)[0]
    assert sys_binding.template_format == "none" and sys_binding.read() == "Be brief."
    sys_binding.write("Be very brief.")
    assert fixed.invoke({"q": "x"}).to_messages()[0].content == "Be very brief."

    few = FewShotPromptTemplate(
        examples=[{"q": "1+1", "a": "2"}],
        example_prompt=PromptTemplate.from_template("Q: {q} A: {a}"),
        prefix="Solve.",
        suffix="Q: {input} A:",
        input_variables=["input"],
    )
    names = {b.key.rsplit("/", 1)[1]: b for b in adapter.bindings(few)}
    assert sorted(names) == ["example_prompt", "prefix", "suffix"]
    names["prefix"].write("Solve carefully.")
    names["suffix"].write("Question: {input}\nAnswer:")
    assert few.format(input="2+2") == "Solve carefully.\n\nQ: 1+1 A: 2\n\nQuestion: 2+2\nAnswer:"
    assert few.input_variables == ["input"]


def test_walk_finds_prompts_through_wrappers_in_order():
    p1 = ChatPromptTemplate.from_messages([("human", "one {x}")])
    p2 = ChatPromptTemplate.from_messages([("human", "two {x}")])
    p3 = PromptTemplate.from_template("three {x}")
    p4 = PromptTemplate.from_template("four {x}")
    model = lc_apps.ScriptedChatModel()
    chain = (
        {"a": p1 | model, "b": (p2 | model.bind(stop=["x"])).with_retry()}
        | RunnableLambda(lambda d: {"x": d["a"].content})
        | RunnableBranch((lambda d: True, p3), p4).with_config(run_name="pick")
        | StrOutputParser()
    ).with_fallbacks([p4])
    texts = [b.read() for b in adapter.bindings(chain)]
    assert texts == ["one {x}", "two {x}", "three {x}", "four {x}"]
    keys = [b.key for b in adapter.bindings(chain)]
    assert keys == [b.key for b in adapter.bindings(chain)]  # stable
    assert len(set(keys)) == 4


def test_copies_get_their_own_keys(instrumented):
    prompt = ChatPromptTemplate.from_messages([("human", "hello {x}")])
    clone = prompt.model_copy()
    key = adapter.bindings(prompt)[0].key
    with tg_bridge.capture() as run:
        clone.invoke({"x": "1"})
        prompt.invoke({"x": "2"})
    keys = [json.loads(s.attributes[sc.BINDING_IDS])[0] for s in run.spans]
    assert keys[1] == key and keys[0] != key


def test_copy_target_is_independent_and_shares_the_model():
    chain, parts = lc_apps.make_rag()
    dup = adapter.copy(chain)
    originals = adapter.bindings(chain)
    copies = adapter.bindings(dup)
    assert [b.read() for b in copies] == [b.read() for b in originals]
    assert not {b.key for b in copies} & {b.key for b in originals}
    copies[0].write("Rewrite as keywords: nothing else.")
    assert originals[0].read() == lc_apps.REWRITE_SYSTEM
    assert dup.invoke({"question": "What is the capital of France?"}).startswith("Answer:")
    # the model object is shared (it holds clients), so its requests show both apps
    assert any("Rewrite as keywords" in str(m[0].content) for m in parts["model"].requests)


def test_copy_of_a_model_with_a_lock_works():
    import threading

    chain, parts = lc_apps.make_rag()
    object.__setattr__(parts["model"], "_lock_like", threading.Lock())  # not deep-copyable
    with pytest.raises(TypeError):
        copy.deepcopy(parts["model"])
    dup = adapter.copy(chain)
    assert dup.invoke({"question": "What is the capital of France?"}).startswith("Answer:")


def test_tool_description_bindings_are_opt_in():
    run_agent, parts = lc_apps.make_agent_loop()
    assert all("tool" not in b.key for b in adapter.bindings(parts["step"]))
    found = adapter.bindings(parts["step"], tool_descriptions=True)
    bound = [b for b in found if "/tools[0].description" in b.key]
    assert len(bound) == 1 and bound[0].read() == "Search the knowledge base for a query."
    bound[0].write("Look things up in the encyclopedia.")
    run_agent("capital of France")
    tools_sent = parts["model"].requests  # the bound schema is what the model receives
    assert parts["bound"].kwargs["tools"][0]["function"]["description"] == (
        "Look things up in the encyclopedia."
    )
    assert tools_sent  # the loop still ran
    tool_binding = adapter.bindings(lc_apps.search, tool_descriptions=True)[0]
    original = tool_binding.read()
    tool_binding.write("Changed.")
    assert lc_apps.search.description == "Changed."
    tool_binding.write(original)
    assert lc_apps.search.description == original


def test_agent_system_prompt_of_hand_written_loop_round_trip():
    run_agent, parts = lc_apps.make_agent_loop()
    system = adapter.bindings(parts["step"])[0]
    assert system.role == "system" and system.read() == lc_apps.AGENT_SYSTEM
    system.write("You are terse. Always search first.")
    run_agent("capital of France")
    assert parts["model"].requests[-1][0].content == "You are terse. Always search first."
    system.write(lc_apps.AGENT_SYSTEM)
    assert parts["prompt"].messages[0].prompt.template == lc_apps.AGENT_SYSTEM
    assert AIMessage  # imported for the agent helpers' types


def test_bindings_follow_a_replaced_message():
    from langchain_core.prompts import HumanMessagePromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "old {x}"), ("human", "{q}")])
    first = adapter.bindings(prompt)
    assert adapter.bindings(prompt)[0] is first[0]  # stable while unchanged
    prompt.messages[0] = HumanMessagePromptTemplate.from_template("new {x}")
    (replaced, _) = adapter.bindings(prompt)
    assert replaced.key == first[0].key and replaced.read() == "new {x}" and replaced.role == "user"
    replaced.write("newer {x}")
    assert prompt.format_messages(x="1", q="2")[0].content == "newer 1"


def test_check_accepts_each_langchain_format_and_rejects_bad_texts_and_unknown_formats():
    (binding,) = adapter.bindings(PromptTemplate.from_template("Summarize {text}"))
    binding.check("Summarize briefly: {text}")
    with pytest.raises(BindingError, match="f-string"):
        binding.check("Summarize {text")  # unbalanced brace
    mustache = adapter.bindings(PromptTemplate.from_template("Hi {{name}}", template_format="mustache"))[0]
    mustache.check("Hello {{name}}")
    # template_format is a plain str on the binding (tg_bridge's Binding protocol); a value
    # LangChain does not know is refused as a BindingError, never handed to PromptTemplate
    binding.template_format = "jinja3"
    with pytest.raises(BindingError, match="unsupported template format 'jinja3'"):
        binding.check("Summarize {text}")
