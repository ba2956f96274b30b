"""The loopback OpenAI stub (tests/support/openai_stub.py) speaks the protocol the real
clients expect: plain and streamed answers, tool calls, models, embeddings, recording."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.openai_stub import OpenAIStub, fake_vector, last_user_text, tool_call


@pytest.fixture()
def stub():
    with OpenAIStub(lambda req: "echo: " + last_user_text(req)) as server:
        yield server


def _client(stub: OpenAIStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.base_url, api_key="test", max_retries=0, timeout=30)


def test_plain_answer_and_recording(stub):
    out = _client(stub).chat.completions.create(
        model="stub-model", messages=[{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "hello there"}])
    assert out.choices[0].message.content == "echo: hello there"
    assert out.choices[0].finish_reason == "stop"
    assert stub.saw("Be brief.") and not stub.saw("never sent")
    assert stub.chat_requests[-1]["messages"][1]["content"] == "hello there"


def test_streaming_ends_with_done_and_reassembles(stub):
    chunks = list(_client(stub).chat.completions.create(
        model="stub-model", messages=[{"role": "user", "content": "one two  three"}],
        stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two  three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_tool_call_plain_and_streamed(stub):
    stub.responder = lambda req: tool_call("get_weather", {"city": "Paris"})
    client = _client(stub)
    out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "w?"}])
    call = out.choices[0].message.tool_calls[0]
    assert out.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    chunks = list(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "w?"}], stream=True))
    args = "".join(
        tc.function.arguments or "" for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])
    )
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_models_and_embeddings(stub):
    client = _client(stub)
    assert [m.id for m in client.models.list()] == ["stub-model"]
    emb = client.embeddings.create(model="e", input=["red apple", "red apple", "blue sky"])
    a, b, c = (d.embedding for d in emb.data)
    assert a == b == fake_vector("red apple") and a != c
    assert abs(sum(x * x for x in a) - 1.0) < 1e-9
    tokens = client.embeddings.create(model="e", input=[[1, 2, 3]])
    assert len(tokens.data[0].embedding) == 32


def test_errors_are_http_errors_not_hangs(stub):
    def broken(req):
        raise ValueError("boom")

    stub.responder = broken
    with pytest.raises(openai.InternalServerError):
        _client(stub).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    small = OpenAIStub(max_body_bytes=100).start()
    try:
        with pytest.raises(openai.APIStatusError) as info:
            _client(small).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x" * 500}])
        assert info.value.status_code == 413
    finally:
        small.stop()


def test_chat_openai_through_the_stub(stub):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="test", max_retries=0)
    assert llm.invoke("ping").content == "echo: ping"
    assert "".join(c.content for c in llm.stream("pong")) == "echo: pong"
