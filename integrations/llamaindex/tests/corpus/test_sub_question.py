"""SubQuestionQueryEngine, as in LlamaIndex's "Sub Question Query Engine" example
(https://docs.llamaindex.ai/en/stable/examples/query_engine/sub_question_query_engine/), with
the question generator LlamaIndex documents for non-OpenAI function-calling models::

    vector_query_engine = VectorStoreIndex.from_documents(pg_essay).as_query_engine()
    query_engine_tools = [
        QueryEngineTool(
            query_engine=vector_query_engine,
            metadata=ToolMetadata(name="pg_essay", description="Paul Graham essay on What I Worked On"),
        ),
    ]
    query_engine = SubQuestionQueryEngine.from_defaults(
        query_engine_tools=query_engine_tools,
        question_gen=LLMQuestionGenerator.from_defaults(llm=llm),
        use_async=True,
    )
    response = await query_engine.aquery("How was Paul Grahams life different before, during, and after YC?")

Here with ``use_async=False``: with ``use_async=True`` a sync ``query()`` runs the sub questions
in a new event loop (``asyncio.run``) while OpenAILike's async HTTP client stays bound to the
loop that first used it (the optimizer's), so LlamaIndex fails with "bound to a different event
loop" - a LlamaIndex limitation, not a capture one.
"""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.query_engine import SubQuestionQueryEngine
from llama_index.core.question_gen import LLMQuestionGenerator
from llama_index.core.tools import QueryEngineTool, ToolMetadata

from tests.support.llamaindex_stub import openai_like

DOCS = ("The Eiffel Tower is 330 metres tall and stands in Paris.", "The Louvre is a museum in Paris.")
QUESTION_GEN = "question_gen:question_gen_prompt"
FINAL_USER = "response_synthesizer:text_qa_template.conditionals[0].messages[1]"
SUB_USER = "query_engines[paris_facts]/response_synthesizer:text_qa_template.conditionals[0].messages[1]"


def build(stub):
    llm = openai_like(stub)
    vector_query_engine = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS]).as_query_engine(llm=llm)
    query_engine_tools = [
        QueryEngineTool(
            query_engine=vector_query_engine,
            metadata=ToolMetadata(name="paris_facts", description="Facts about the monuments of Paris"),
        ),
    ]
    return SubQuestionQueryEngine.from_defaults(
        query_engine_tools=query_engine_tools,
        question_gen=LLMQuestionGenerator.from_defaults(llm=llm),
        llm=llm,
        use_async=False,  # see the module doc
        verbose=False,
    )


def run(query_engine, question):
    return str(query_engine.query(question))


def test_sub_question_query_engine(corpus, stub, tmp_path):
    seen = corpus.check_app(corpus.AppCase(
        build=build, run=run, expected=(QUESTION_GEN, FINAL_USER, SUB_USER), target=QUESTION_GEN,
        chosen=lambda old: old.startswith("Given a user question, and a list of tools"),
    ), stub, tmp_path)
    # the question generator's template is the parameter, not its output-parser suffix
    app = seen["app"]
    assert "sub_question" in corpus.paths_of(app)[QUESTION_GEN].read()
