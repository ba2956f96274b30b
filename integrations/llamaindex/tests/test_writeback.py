"""Write-back through bindings: the next query sends the new prompt; revert is byte-exact."""

from __future__ import annotations

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.chat_engine import CondensePlusContextChatEngine, ContextChatEngine
from tg_bridge_llamaindex import adapter

from tg_bridge.capturing import capture
from tg_bridge.exceptions import BindingError

NEW_QA = "Use ONLY these facts:\n{context_str}\nQuestion: {query_str}\nShort answer:"


def _key(bindings, suffix):
    return next(b for b in bindings if b.key.endswith(suffix))


def test_write_changes_next_query_and_revert_is_exact(index, llm):
    engine = index.as_query_engine(llm=llm)
    binding = _key(adapter.bindings(engine), "response_synthesizer:text_qa_template")
    original = binding.read()
    original_prompt = engine.get_prompts()["response_synthesizer:text_qa_template"]

    binding.write(NEW_QA)
    engine.query("How tall is the Eiffel Tower?")
    assert llm.received[-1].startswith("Use ONLY these facts:")
    assert llm.received[-1].endswith("Question: How tall is the Eiffel Tower?\nShort answer:")
    assert binding.read() == NEW_QA

    binding.write(original)
    engine.query("How tall is the Eiffel Tower?")
    assert binding.read() == original
    restored = engine.get_prompts()["response_synthesizer:text_qa_template"]
    assert restored.default_template.template == original_prompt.default_template.template
    assert [c[1].get_template() for c in restored.conditionals] == [
        c[1].get_template() for c in original_prompt.conditionals
    ]
    assert llm.received[-1].startswith("Context information is below.")


def test_write_keeps_the_tag_so_capture_still_finds_the_binding(index, llm):
    engine = index.as_query_engine(llm=llm)
    binding = _key(adapter.bindings(engine), "response_synthesizer:text_qa_template")
    binding.write(NEW_QA)
    with capture() as run:
        engine.query("q")
    assert binding.key in run.bindings
    assert run.bindings[binding.key].read() == NEW_QA


def test_selector_conditional_chat_message_binding(index, llm):
    engine = index.as_query_engine(llm=llm)
    system = _key(adapter.bindings(engine), "text_qa_template.conditionals[0].messages[0]")
    assert system.template_format == "f-string"
    before = system.read()
    system.write("You answer in one word.")
    selector = engine.get_prompts()["response_synthesizer:text_qa_template"]
    assert selector.conditionals[0][1].message_templates[0].content == "You answer in one word."
    assert selector.default_template.template.startswith("Context information")  # untouched
    system.write(before)
    assert system.read() == before


def test_binding_of_a_replaced_prompt_raises_binding_error(index, llm):
    engine = index.as_query_engine(llm=llm)
    binding = _key(adapter.bindings(engine), "text_qa_template.conditionals[0].messages[0]")
    engine.update_prompts({"response_synthesizer:text_qa_template": PromptTemplate("{context_str}{query_str}")})
    with pytest.raises(BindingError):
        binding.read()


def test_chat_engine_system_prompt_and_context_template(index, llm):
    chat = ContextChatEngine.from_defaults(retriever=index.as_retriever(), llm=llm, system_prompt="You are a guide.")
    bindings = {b.key.rsplit("/", 1)[-1]: b for b in adapter.bindings(chat)}
    assert {"system_prompt", "context_template"} <= set(bindings)
    with capture() as run:
        chat.chat("Where is the Louvre?")
    assert "You are a guide." in llm.received[-1]
    assert bindings["system_prompt"].key in run.bindings
    bindings["system_prompt"].write("You are a strict archivist.")
    bindings["context_template"].write("FACTS:\n{context_str}")
    chat.reset()
    chat.chat("Where is the Louvre?")
    assert "You are a strict archivist." in llm.received[-1]
    assert "FACTS:\n" in llm.received[-1]


def test_condense_plus_context_prompts_are_bound(index, llm):
    chat = CondensePlusContextChatEngine.from_defaults(retriever=index.as_retriever(), llm=llm, system_prompt="Guide.")
    names = sorted(b.key.rsplit("/", 1)[-1] for b in adapter.bindings(chat))
    assert names == ["condense_prompt_template", "context_prompt_template", "context_refine_prompt_template", "system_prompt"]
    system = _key(adapter.bindings(chat), "/system_prompt")
    system.write("Curator.")
    chat.chat("Where is the Louvre?")
    assert "Curator." in llm.received[-1]


def test_copy_is_independent(index, llm):
    engine = index.as_query_engine(llm=llm)
    original_key = _key(adapter.bindings(engine), "response_synthesizer:text_qa_template")
    clone = adapter.copy(engine)
    clone_binding = _key(adapter.bindings(clone), "response_synthesizer:text_qa_template")
    assert clone_binding.key != original_key.key
    clone_binding.write(NEW_QA)
    assert original_key.read().startswith("Context information")
    engine.query("original?")
    assert llm.received[-1].startswith("Context information")
    clone.query("clone?")
    assert llm.received[-1].startswith("Use ONLY these facts:")
    # the heavy index is shared, not copied
    assert clone.retriever._index is engine.retriever._index


def test_llm_system_prompt_binding_and_copy_isolation(index, make_llm):
    llm = make_llm()
    llm.system_prompt = "Answer like a pirate."
    engine = index.as_query_engine(llm=llm)
    binding = _key(adapter.bindings(engine), "/system_prompt")
    assert binding.read() == "Answer like a pirate."
    clone = adapter.copy(engine)
    _key(adapter.bindings(clone), "/system_prompt").write("Answer like a judge.")
    assert llm.system_prompt == "Answer like a pirate."


def test_owns():
    from llama_index.core.llms import MockLLM

    assert adapter.owns(MockLLM())
    assert not adapter.owns(object())
    assert not adapter.owns("a string")
