"""The LlamaIndex query-engine example, run through ``main(argv)``: scripted FakeEngines prove
the optimized template really reaches the live app; one short run on the embedded model."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from tests.support.examples import QUOTE, load_example, quote_optimizer, quoting_app  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402

MARKER = QUOTE


load = load_example


@pytest.fixture(scope="module")
def example() -> Any:
    return load("llamaindex_query_engine")


def optimizer_model(example: Any, seen: list[str]) -> FakeEngine:
    return quote_optimizer(example.QA_TEMPLATE, seen,
                           "The answer ignored the context: the template should ask to quote the fact.")


def test_query_engine_example_improves_the_live_template(example, tmp_path, capsys):
    app = FakeEngine(quoting_app)
    seen: list[str] = []
    code = example.main(
        ["--examples", "2", "--val", "2", "--steps", "1", "--quiet", "--store", str(tmp_path / "r.db")],
        app_engine=app, backward_engine=optimizer_model(example, seen),
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "baseline score: 0.00" in out
    assert "-> accepted" in out
    assert "final score: 1.00" in out
    assert "+" + MARKER in out  # the diff of the patched template
    # the update call was shown the starting template and its placeholders
    assert seen and example.QA_TEMPLATE in seen[0]
    # after the step the app's own LLM received the new template (write-back into the live app)
    prompts = [m[-1]["content"] for m, _, _ in app.calls]
    assert MARKER not in prompts[0]
    assert any(MARKER in p for p in prompts)
    assert "forward" in out and "total" in out  # the usage table


def test_query_engine_example_rejects_bad_arguments(example, capsys):
    with pytest.raises(SystemExit):
        example.main(["--examples", "9", "--val", "5"], app_engine=FakeEngine(quoting_app),
                     backward_engine=FakeEngine(default="x"))
    assert "--examples" in capsys.readouterr().err


def test_plan_gives_whole_batches(example):
    assert example.plan(4, 2) == (2, 1)
    assert example.plan(4, 3) == (2, 1)
    assert example.plan(2, 5) == (1, 3)


def test_hash_embedding_is_deterministic_and_retrieves_the_fact(example):
    from tg_bridge_llamaindex import EngineLLM

    from tg_bridge.datasets import QA_PAIRS

    emb = example.HashEmbedding()
    assert emb.get_text_embedding("Firefly robots") == emb.get_text_embedding("Firefly robots")
    engine = example.build_query_engine(EngineLLM(FakeEngine(default="x")))
    hits = 0
    for pair in QA_PAIRS:
        nodes = engine.retriever.retrieve(pair["inputs"]["question"])
        hits += any(pair["expected"].lower() in n.node.get_content().lower() for n in nodes)
    assert hits >= 8, hits


@pytest.mark.slow
def test_query_engine_example_on_the_embedded_model(example, tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    code = example.main(["--examples", "1", "--val", "0", "--steps", "1", "--quiet",
                         "--answer-tokens", "24", "--feedback-tokens", "96",
                         "--store", str(tmp_path / "r.db")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "baseline score:" in out and "step 1:" in out and "final score:" in out
