"""Capture and write-back on two more tutorial shapes (the README's coverage rows):

- a ``condense_question`` chat engine, as in LlamaIndex's "Chat Engine - Condense Question
  Mode" example: ``index.as_chat_engine(chat_mode="condense_question", verbose=True)``;
- an ``AgentWorkflow`` of one FunctionAgent, as in LlamaIndex's "Multi-agent workflows"
  guide: ``AgentWorkflow(agents=[calc_agent], root_agent="calc")``.
"""

from __future__ import annotations

import asyncio

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent

from tests.support.llamaindex_stub import openai_like


def _llm(stub):
    return openai_like(stub, is_function_calling_model=True)


def multiply(a: float, b: float) -> float:
    """Multiply two numbers and returns the product"""
    return a * b


def test_condense_question_chat_engine(corpus, stub):
    index = VectorStoreIndex.from_documents([Document(text="The Eiffel Tower is 330 metres tall.")])
    chat_engine = index.as_chat_engine(chat_mode="condense_question", llm=_llm(stub))
    chat_engine.chat("Hello")
    found, _ = corpus.captured_paths(chat_engine, lambda: chat_engine.chat("How tall is it?"))
    assert "condense_question_prompt" in found
    assert "query_engine/response_synthesizer:text_qa_template.conditionals[0].messages[0]" in found
    binding = corpus.paths_of(chat_engine)["condense_question_prompt"]
    original = binding.read()
    binding.write(original + "\n" + corpus.MARKER)
    stub.reset()
    chat_engine.chat("And the Louvre?")
    assert corpus.received(stub)
    binding.write(original)
    assert binding.read() == original


def test_agent_workflow(corpus, stub):
    calc = FunctionAgent(name="calc", description="Multiplies numbers.", tools=[multiply], llm=_llm(stub),
                         system_prompt="You are a helpful assistant that can multiply two numbers.")
    workflow = AgentWorkflow(agents=[calc], root_agent="calc")

    def run():
        async def main():
            return str(await workflow.run(user_msg="What is 6 * 7?"))

        return asyncio.run(main())

    found, _ = corpus.captured_paths(workflow, run)
    assert found == ["calc/system_prompt"]
    binding = corpus.paths_of(workflow)["calc/system_prompt"]
    binding.write(binding.read() + " " + corpus.MARKER)
    stub.reset()
    assert corpus.CITED.strip() in run()
