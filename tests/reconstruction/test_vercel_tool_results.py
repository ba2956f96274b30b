"""Vercel AI SDK ``ai.toolCall.result`` / ``.args`` are JSON text (the SDK records
``JSON.stringify`` of the value): read back as the text the next model call's tool message
holds (conventions/vercel.py)."""

from __future__ import annotations

from tg_bridge.reconstruction import reconstruct


def _vercel_tool(make_span, result):
    return make_span("ai.toolCall", "t", "r", start=2, **{
        "ai.operationId": "ai.toolCall", "ai.toolCall.name": "lookup", "ai.toolCall.id": "call-1",
        "ai.toolCall.args": '{"city":"Pune"}', "ai.toolCall.result": result})


def test_vercel_tool_results_are_decoded_from_their_json_text(make_span):
    root = make_span("ai.generateText", "r", **{"ai.operationId": "ai.generateText"})
    for recorded, text in (('"result1"', "result1"), ('{"temp": 31}', '{"temp":31}'),
                           ("85", "85"), ("plain words", "plain words"), ('"{bad', '"{bad')):
        graph = reconstruct([root, _vercel_tool(make_span, recorded)])
        (tool,) = [n for n in graph.nodes if n.kind == "tool_result"]
        assert tool.value == text, recorded


def test_vercel_tool_args_are_read_as_compact_json(make_span):
    root = make_span("ai.generateText", "r", **{"ai.operationId": "ai.generateText"})
    tool = make_span("ai.toolCall", "t", "r", start=2, **{
        "ai.operationId": "ai.toolCall", "ai.toolCall.name": "lookup",
        "ai.toolCall.args": '{ "city": "Pune" }', "ai.toolCall.result": "31"})
    (result,) = [n for n in reconstruct([root, tool]).nodes if n.kind == "tool_result"]
    assert result.op.attrs["arguments"] == '{"city":"Pune"}' and result.value == "31"
