"""backward(): cost contract, batching, summaries, warnings, deep graphs, rules."""

from __future__ import annotations

import warnings

import pytest

from tests.autograd.builders import chain, counting_engine
from tg_bridge.autograd import abackward, backward, register_rule
from tg_bridge.autograd.functional import format_template, function, llm_call
from tg_bridge.exceptions import DisconnectedParameterWarning, GraphError, UsageError
from tg_bridge.losses import MetricLoss, TextLoss, feedback
from tg_bridge.optim import TGD
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Operation, Variable


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("mode,bound", [("edge", lambda n: 4 * n + 1), ("fused", lambda n: 2 * n + 2)])
@pytest.mark.parametrize("structured", [True, False])
def test_cost_contract_one_example(n, mode, bound, structured):
    engine = counting_engine(structured)
    out, params = chain(engine, n)
    loss = TextLoss("Is the answer correct?", engine=engine)(out)
    report = backward(loss, engine=engine, mode=mode)
    patch = TGD(params, engine=engine).propose()
    assert engine.call_count <= bound(n)
    assert engine.call_count == bound(n)  # exact: no hidden calls either way
    assert report.calls == (2 * n if mode == "edge" else 1)
    assert len(patch.changes) == n and not patch.metadata["rejected"]
    assert all(len(p.gradients) == 1 for p in params)


@pytest.mark.parametrize("mode", ["edge", "fused"])
def test_batch_shares_update_calls(mode):
    n, b = 2, 3
    engine = counting_engine()
    params = None
    losses = []
    for i in range(b):
        out, params = chain(engine, n, params=params, question=f"question {i}")
        losses.append(TextLoss("Correct?", engine=engine)(out))
    report = backward(losses, engine=engine, mode=mode)
    TGD(params, engine=engine).propose()
    backward_calls = 2 * n * b if mode == "edge" else b
    assert report.calls == backward_calls
    assert engine.call_count == b * (n + 1) + backward_calls + n
    assert all(len(p.gradients) == b for p in params)


def _batch_prompt_sizes(b: int, k: int = 4) -> tuple[int, int]:
    engine = counting_engine()
    params, losses = None, []
    for i in range(b):
        out, params = chain(engine, 1, params=params, question=f"question {i}")
        losses.append(TextLoss("Correct?", engine=engine)(out))
    start = engine.call_count
    backward(losses, engine=engine, max_gradients=k)
    TGD(params, engine=engine, max_gradients=k).propose()
    sizes = [len(p) for p in engine.prompts()[start:]]
    return max(sizes), engine.call_count - start


def test_summaries_above_k_bound_prompt_sizes():
    small, calls_small = _batch_prompt_sizes(3)
    mid, calls_mid = _batch_prompt_sizes(40)
    big, calls_big = _batch_prompt_sizes(100)
    # 3 <= K: no summary; more than K: summaries in rounds of at most 8 items
    assert calls_small == 3 * 2 + 1
    assert calls_mid > 40 * 2 + 1 and calls_big > 100 * 2 + 1
    assert big <= small and abs(big - mid) <= 10  # flat in B, not proportional to it


def test_summary_is_one_call_when_few_over_k():
    engine = counting_engine()
    params, losses = None, []
    for i in range(6):
        out, params = chain(engine, 1, params=params, question=f"q{i}")
        losses.append(TextLoss("Correct?", engine=engine)(out))
    backward(losses, engine=engine, max_gradients=4)
    before = engine.call_count
    patch = TGD(params, engine=engine, max_gradients=4).propose()
    assert engine.call_count - before == 2  # one summary + one update
    assert patch.changes[0].provenance["gradients"] == ["merged feedback"]
    assert len(params[0].gradients) == 6  # propose does not rewrite the gradients


def test_intermediate_summarized_before_passing_upstream():
    engine = counting_engine()
    p = Variable("sys", role="system prompt", requires_grad=True, kind="parameter")
    out = llm_call(engine, Variable("q", role="question", kind="input"), system=p)
    for i in range(5):
        feedback(out, f"human note {i}")
    report = backward(out, engine=engine, max_gradients=2)
    assert report.summaries == 1 and report.calls == 2
    assert len(out.gradients) == 1 and out.gradients[0].text == "merged feedback"


def test_disconnected_parameter_warns():
    engine = counting_engine()
    out, params = chain(engine, 1)
    stray = Variable("unused", role="unused prompt", requires_grad=True)
    loss = MetricLoss(lambda text, ex: 0.0)(out)
    with pytest.warns(DisconnectedParameterWarning, match="unused prompt"):
        report = backward(loss, engine=engine, parameters=[params[0], stray])
    assert report.disconnected == [stray.key]
    assert params[0].gradients and not stray.gradients


def test_no_warning_when_all_connected():
    engine = counting_engine()
    out, params = chain(engine, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backward(MetricLoss(lambda t, e: 1.0)(out), engine=engine, parameters=params)


def test_metric_loss_seeds_without_a_call():
    engine = counting_engine()
    out, params = chain(engine, 1)
    loss = MetricLoss(lambda ex, text: (0.25, f"expected {ex}"), name="exact")(out, "4")
    assert loss.metadata["score"] == 0.25 and loss.op.kind == "loss" and loss.parents == (out,)
    before = engine.call_count
    report = backward(loss, engine=engine)
    assert engine.call_count - before == 1 == report.calls  # only the edge into the prompt
    seeded = out.gradients[0].text
    assert "0.25" in seeded and "expected 4" in seeded and "'exact'" in seeded


def test_human_feedback_propagates():
    engine = counting_engine()
    out, params = chain(engine, 2)
    assert feedback(out, "Too long.") is out
    backward(out, engine=engine)
    assert [len(p.gradients) for p in params] == [1, 1]
    prompts = engine.prompts()
    assert any("Too long." in p for p in prompts[2:])
    with pytest.raises(UsageError):
        feedback(out, "  ")


def test_root_without_loss_or_feedback_is_a_graph_error():
    out, _ = chain(counting_engine(), 1)
    with pytest.raises(GraphError, match="neither a loss"):
        backward(out, engine=counting_engine())
    with pytest.raises(UsageError):
        backward([], engine=counting_engine())
    with pytest.raises(UsageError):
        backward(MetricLoss(lambda t, e: 1)(out), mode="sideways")


def test_format_rule_passes_feedback_without_a_call():
    engine = counting_engine()
    template = Variable("Answer: {question}", role="prompt template", requires_grad=True, kind="parameter")
    question = Variable("2+2?", role="question", kind="input")
    filled = format_template(template, {"question": question})
    assert filled.value == "Answer: 2+2?"
    out = llm_call(engine, filled, name="qa")
    loss = MetricLoss(lambda t, e: 0.0)(out)
    report = backward(loss, engine=engine)
    assert report.calls == 1  # the llm edge into the filled prompt; format costs nothing
    assert template.gradients and not question.gradients
    assert "formatted" in template.gradients[0].context


def test_function_rule_and_custom_rule():
    engine = counting_engine()
    p = Variable("word list", role="instruction", requires_grad=True, kind="parameter")
    upper = function(str.upper, [p], "uppercases the text")
    feedback(upper, "should be lowercase")
    backward(upper, engine=engine)
    assert "uppercases the text" in engine.prompts()[-1]
    assert p.gradients

    async def echo_rule(ctx, var):
        from tg_bridge.autograd import Edge

        return [Edge(v, "echo " + var.gradient_text(), "ctx") for v in var.op.inputs if ctx.needs_grad(v)]

    register_rule("echo_op", echo_rule)
    q = Variable("x", role="param", requires_grad=True)
    op = Operation("echo_op", (q,))
    y = Variable("y", role="out", parents=(q,), op=op)
    feedback(y, "hi", trusted=True)
    backward(y, engine=engine)
    assert q.gradients[0].text == "echo hi"
    z = Variable("z", role="out", parents=(q,), op=Operation("unknown_kind", (q,)))
    feedback(z, "hi")
    with pytest.raises(GraphError, match="unknown_kind"):
        backward(z, engine=engine)


def test_only_edges_that_need_grad_get_calls():
    engine = counting_engine()
    fixed = Variable("fixed system", role="system prompt", kind="parameter")  # not trainable
    out = llm_call(engine, Variable("q", role="question", kind="input"), system=fixed)
    report = backward(MetricLoss(lambda t, e: 0.0)(out), engine=engine)
    assert report.calls == 0 and not out.gradients


def test_deep_chain_no_recursion_error():
    engine = FakeEngine(default="fb")
    p = Variable("root prompt", role="prompt", requires_grad=True)
    node = p
    depth = 10_000
    for i in range(depth):
        op = Operation("function", (node,), attrs={"description": "step"})
        node = Variable(f"v{i}", role="value", parents=(node,), op=op)
    feedback(node, "bad")
    report = backward(node, engine=engine)
    assert report.calls == depth and len(report.levels) == depth
    assert p.gradients[0].text == "fb"


async def test_levels_and_batch_run_concurrently():
    engine = counting_engine()
    params, losses = None, []
    for i in range(4):
        out, params = await _achain(engine, params, i)
        losses.append(MetricLoss(lambda t, e: 0.0)(out))
    engine.hold_until(8)  # backward calls only: each waits until 8 overlap
    report = await abackward(losses, engine=engine)
    assert report.calls == 12  # 4 runs x (2 edges at step 2 + 1 at step 1)
    assert [lv.calls for lv in report.levels] == [0, 8, 4]
    # the 8 calls of one level (4 runs of the batch) ran at once; the next level waited
    assert engine.max_in_flight == 8


async def _achain(engine, params, i):
    from tg_bridge.autograd.functional import allm_call

    x = Variable(f"q{i}", role="question", kind="input")
    if params is None:
        params = [Variable(f"sys{j}", role=f"system {j}", requires_grad=True, name=f"s{j}") for j in range(2)]
    for j in range(2):
        x = await allm_call(engine, x, system=params[j], name=f"step{j}")
    return x, params


def test_fused_tag_fallback_and_unparseable():
    engine = counting_engine(structured=False)
    out, params = chain(engine, 2)
    backward(MetricLoss(lambda t, e: 0.0)(out), engine=engine, mode="fused")
    assert sorted(p.gradients[0].text for p in params) == ["tagged feedback p1", "tagged feedback p2"]
    from tg_bridge.exceptions import OptimizerOutputError

    bad = FakeEngine(["{}", "still nothing {"], supports_structured=True)
    out2, _ = chain(counting_engine(), 2)
    with pytest.raises(OptimizerOutputError) as info:
        backward(MetricLoss(lambda t, e: 0.0)(out2), engine=bad, mode="fused")
    assert bad.call_count == 2 and info.value.raw == "still nothing {"
