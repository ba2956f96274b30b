"""The host-model engine: plain and structured completions over a LlamaIndex LLM."""

from __future__ import annotations

import pydantic
import pytest
from tg_bridge_llamaindex import LlamaIndexEngine, adapter

from tg_bridge.exceptions import EngineError


class Verdict(pydantic.BaseModel):
    score: int
    reason: str


def test_plain_completion_with_usage(make_llm):
    llm = make_llm(answers=["Paris is in France."])
    engine = adapter.engine(llm)
    assert isinstance(engine, LlamaIndexEngine)
    done = engine.complete([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is Paris?"}])
    assert done.text == "Paris is in France."
    assert done.completion_tokens == 4 and done.prompt_tokens > 0
    assert "Be brief." in llm.received[0] and "Where is Paris?" in llm.received[0]
    assert engine.model == "scripted" and engine.id == "llamaindex:ScriptedLLM"


def test_structured_completion_parses_pydantic_and_schema(make_llm):
    llm = make_llm(answers=['```json\n{"score": 4, "reason": "clear"}\n```', '{"score": 2, "reason": "vague"}'])
    engine = adapter.engine(llm)
    done = engine.complete([{"role": "user", "content": "Grade it."}], response_format=Verdict)
    assert done.parsed == Verdict(score=4, reason="clear")
    assert '"score"' in llm.received[0]  # the schema was stated in the request
    schema = Verdict.model_json_schema()
    done = engine.complete([{"role": "user", "content": "Grade it."}], response_format=schema)
    assert done.parsed == {"score": 2, "reason": "vague"}


def test_structured_completion_gets_one_corrective_turn(make_llm):
    llm = make_llm(answers=["I think it is good.", '{"score": 5, "reason": "fine"}'])
    done = adapter.engine(llm).complete([{"role": "user", "content": "Grade."}], response_format=Verdict)
    assert done.parsed.score == 5
    assert "could not be parsed" in llm.received[1]


def test_unparseable_structured_answer_raises_engine_error(make_llm):
    llm = make_llm(answers=["nope", "still nope"])
    engine = LlamaIndexEngine(llm, max_retries=0)
    with pytest.raises(EngineError) as info:
        engine.complete([{"role": "user", "content": "Grade."}], response_format=Verdict)
    assert info.value.retryable and info.value.raw["body"] == "still nope"


def test_llm_failure_becomes_engine_error(make_llm):
    def fail(prompt):
        raise ValueError("backend down")

    engine = LlamaIndexEngine(make_llm(fn=fail), max_retries=0)
    with pytest.raises(EngineError, match="backend down") as info:
        engine.complete([{"role": "user", "content": "x"}])
    assert not info.value.retryable
