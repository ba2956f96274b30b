"""Render the notebook views to HTML and screenshot them with headless Chromium, to look at.

    python benchmarks/screenshot_views.py [--out DIR] [--engine auto|builtin|dot] [--no-png]

Writes DIR/<name>.html and DIR/<name>.png (DIR defaults to a new temporary directory) for: a small RAG graph, a wide agent-like graph
with long and hostile node text, a result of 50 steps, one of 500 steps and the edge cases
(1 step, all scores equal, negative and >1 scores with NaN). Without Chromium on PATH only the
HTML is written. Nothing here touches the network: Chromium runs with networking features off
on local files.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tg_bridge import Graph, Variable
from tg_bridge.loop.result import OptimizationResult, StepResult
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.variable import Operation
from tg_bridge.views import graph_to_html

HOSTILE = 'Ignore "all" <script>alert(1)</script> ]]> `code` & {x}\nnew line \\ end'


def _llm(name: str, value: str, parents: list[Variable]) -> Variable:
    out = Variable(value, role=f"answer of LLM step '{name}'", kind="llm_output", parents=parents)
    out.op = Operation("llm_call", tuple(parents), out, {"model": "m"}, name)
    return out


def rag_graph() -> Graph:
    system = Variable("You answer from the context only. Cite the document id.", role="system prompt",
                      requires_grad=True, kind="parameter", name="system", key="rag:system")
    question = Variable("Who wrote the design note on retries?", role="question", kind="input",
                        name="question")
    docs = [Variable(f"doc {i}: retries back off exponentially, see note {i}", role="document",
                     kind="document", name=f"doc{i}") for i in range(3)]
    answer = _llm("answer", "Alice wrote it [doc 1].", [system, question, *docs])
    loss = Variable("correct but cites the wrong doc", role="evaluation", kind="loss", parents=[answer])
    loss.op = Operation("loss", (answer,), loss, {})
    return Graph([loss])


def merged_graph(runs: int = 4) -> Graph:
    """A batch: ``runs`` RAG runs merged so the shared prompt is one parameter."""
    return Graph.merge([rag_graph() for _ in range(runs)])


def agent_graph() -> Graph:
    """Several LLM steps, a tool, two prompts per step, edges that skip layers, hostile text."""
    planner_sys = Variable("You are a planner. " * 12, role="system prompt of planner", requires_grad=True,
                           kind="parameter", name="planner_system", key="agent:planner")
    writer_sys = Variable(HOSTILE, role="system prompt of writer", requires_grad=True, kind="parameter",
                          name="writer_system", key="agent:writer")
    style = Variable("Short sentences. " + "x" * 300, role="style guide", requires_grad=True,
                     kind="parameter", name="style", key="agent:style")
    task = Variable("Summarize Q3 incidents and draft a mail to the team \u4f60\u597d\u4e16\u754c",
                    role="task", kind="input", name="task")
    plan = _llm("planner", "1. search incidents 2. group by cause 3. draft", [planner_sys, task])
    tool = Variable('[{"id": 7, "cause": "dns"}, {"id": 9, "cause": "disk"}]', role="tool result",
                    kind="tool_result", name="search_incidents", parents=[plan])
    groups = _llm("grouper", "dns: 1, disk: 1", [planner_sys, tool])
    draft = _llm("writer", "Hi team, in Q3 we had two incidents...", [writer_sys, style, groups, task])
    review = _llm("reviewer", "Looks fine, mention the postmortem links.", [draft, style])
    final = _llm("finalizer", "Hi team, ... postmortems: ...", [draft, review, writer_sys])
    loss = Variable("tone ok, missing numbers", role="evaluation", kind="loss", parents=[final, task])
    loss.op = Operation("loss", (final, task), loss, {})
    return Graph([loss])


def result(n_steps: int, *, seed: int = 1, scores: str = "normal") -> OptimizationResult:
    rng = random.Random(seed)
    baseline = {"normal": 0.42, "equal": 0.5, "wild": -0.3}[scores]
    current = baseline
    history = []
    for step in range(1, n_steps + 1):
        roll = rng.random()
        if roll < 0.12:
            score = None
        elif scores == "equal":
            score = 0.5
        elif scores == "wild":
            score = float("nan") if step % 7 == 0 else current + rng.uniform(-0.8, 1.2)
        else:
            score = min(1.0, max(0.0, current + rng.uniform(-0.08, 0.06)))
        accepted = (score is not None and not math.isnan(score) and score >= current)
        history.append(StepResult(
            step=step, epoch=1 + (step - 1) // 10, batch=(0, 1), candidate=None, score=score,
            before=current, accepted=accepted,
            gradients={"app:system": (f"Step {step}: the answer ignored the units; " * 3,),
                       "app:<b>user</b>": (HOSTILE,)} if score is not None else {},
            usage={"forward": {"calls": 4}, "backward": {"calls": 3}},
            reason="" if accepted else ("no candidate" if score is None else "score dropped <b>"),
        ))
        if accepted:
            current = score
    patch = Patch([Change("app:system", "prompt", "You are terse.", "You are terse. Give units.", "ab12")])
    return OptimizationResult(
        run_id=f"run-{n_steps}-{scores}", baseline_score=baseline, best_score=current, best_patch=patch,
        history=history, usage={"forward": {"calls": 4 * n_steps, "prompt_tokens": 900},
                                "eval": {"calls": 20, "cached_calls": 2}},
    )


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;margin:16px'><h3>{title}</h3>{body}</body></html>")


def screenshot(html_file: Path, png: Path, chromium: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,900",
             html_file.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output directory (default: a new temp dir)")
    parser.add_argument("--engine", default="auto", choices=["auto", "builtin", "dot"])
    parser.add_argument("--no-png", action="store_true", help="write the HTML only")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tg-bridge-views-"))
    out.mkdir(parents=True, exist_ok=True)
    views = {
        "graph_rag": graph_to_html(rag_graph(), engine=args.engine),
        "graph_agent": graph_to_html(agent_graph(), engine=args.engine),
        "graph_batch": graph_to_html(merged_graph(), engine=args.engine),
        "result_50": result(50)._repr_html_(),
        "result_500": result(500, seed=3)._repr_html_(),
        "result_1_step": result(1, seed=2)._repr_html_(),
        "result_all_equal": result(12, scores="equal")._repr_html_(),
        "result_negative_nan": result(30, scores="wild")._repr_html_(),
    }
    chromium = None if args.no_png else next(
        (p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                     shutil.which("google-chrome")) if p), None)
    for name, body in views.items():
        html_file = out / f"{name}.html"
        html_file.write_text(page(name, body), encoding="utf-8")
        if chromium:
            screenshot(html_file, out / f"{name}.png", chromium)
        print(html_file, "+ png" if chromium else "(no chromium: html only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
