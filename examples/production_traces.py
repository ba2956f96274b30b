"""Improve a production app's prompt from its traces and its users' feedback, offline.

No live app is needed to optimize: the input is what production already has --
``examples/data/prod_traces.otlp.jsonl``, spans of a LlamaIndex support bot recorded by the
OpenInference instrumentor and written by an OpenTelemetry Collector file exporter (OTLP JSON),
and ``examples/data/feedback.jsonl``, thumbs up/down with comments keyed by trace id (both made
by ``examples/data/make_production_traces.py``). tg_bridge rebuilds each trace with feedback as
a graph (the same QA template seen in every trace is ONE parameter, named by its identity:
name + content hash), seeds the feedback as the gradient of each answer, runs backward, and
proposes a Patch, saved as JSON for review. At "deploy time" the patch is applied to a freshly
built app by prompt identity with ``tg_bridge.apply_patch``: no binding key is needed, only the
same starting prompt text.

    python examples/production_traces.py                       # embedded SmolLM2, offline
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/production_traces.py --engine openai:MODEL

The same from the command line::

    tg-bridge optimize --traces examples/data/prod_traces.otlp.jsonl \\
        --feedback examples/data/feedback.jsonl --engine local --out patch.json
    tg-bridge show patch.json

The embedded 135M-parameter model often proposes a template the validator rejects (a lost
``{placeholder}``); then nothing is deployed, which is the safe outcome.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tg_bridge_llamaindex import EngineLLM

import tg_bridge
from tg_bridge.offline import optimize_traces, read_feedback
from tg_bridge.patching.patch import Patch
from tg_bridge.reconstruction import load_traces
from tg_bridge.traces import read_spans

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import build_engines, print_usage  # noqa: E402
from llamaindex_query_engine import QA_KEY, build_query_engine  # noqa: E402

DATA = HERE / "data"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=DATA / "prod_traces.otlp.jsonl")
    parser.add_argument("--feedback", type=Path, default=DATA / "feedback.jsonl")
    parser.add_argument("--out", type=Path, default=Path("patch.json"), help="where to save the patch")
    parser.add_argument("--engine", default="local", help="the app's model at deploy time")
    parser.add_argument("--backward-engine", default=None,
                        help="the model writing feedback and new prompts (default: --engine)")
    parser.add_argument("--answer-tokens", type=int, default=48)
    parser.add_argument("--feedback-tokens", type=int, default=192,
                        help="max tokens per feedback/update answer of the local model")
    parser.add_argument("--quiet", action="store_true", help="no gradients, no deploy-time answer")
    return parser.parse_args(argv)


def show_inputs(args: argparse.Namespace) -> tuple[list[Any], Any]:
    """Print what the files hold; returns (graphs, feedback entries)."""
    spans = read_spans(args.traces)
    graphs = load_traces(args.traces)
    entries = read_feedback(args.feedback)
    downs = sum(1 for e in entries if e.score is not None and e.score < 0.5)
    print(f"traces: {len(graphs)} ({len(spans)} spans) from {args.traces.name}")
    print(f"feedback: {len(entries)} lines ({downs} thumbs down) from {args.feedback.name}")
    print("\nparameters found (one per prompt identity, across all traces):")
    seen: dict[str, list[Any]] = {}
    for graph in graphs:
        for param in graph.parameters():
            seen.setdefault(param.key, []).append(param)
    for key, uses in seen.items():
        print(f"  {key}\n    role: {uses[0].role}\n    used in {len(uses)} trace(s); "
              f"text: {uses[0].value!r}")
    return graphs, entries


def deploy(patch_path: Path, app_engine: Any, args: argparse.Namespace, question: str | None) -> Any:
    """Build the app as production does, apply the saved patch by identity, show the change."""
    app = build_query_engine(EngineLLM(app_engine, max_tokens=args.answer_tokens))
    before = app.get_prompts()[QA_KEY].get_template()
    applied = tg_bridge.apply_patch(app, patch_path)
    after = app.get_prompts()[QA_KEY].get_template()
    print(f"\ndeploy: applied {len(applied.changes)} change(s) from {patch_path} by prompt identity")
    print(f"live QA template changed: {'yes' if after != before else 'no'}")
    print(f"live QA template now:\n{after}")
    if question and not args.quiet:
        print(f"\nQ: {question}\nA: {str(app.query(question)).strip()}")
    return app


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run the example; returns the exit code. ``app_engine``/``backward_engine`` override
    ``--engine`` (tests pass FakeEngines)."""
    args = parse_args(argv)
    try:
        graphs, entries = show_inputs(args)
    except tg_bridge.TgBridgeError as exc:
        print(f"cannot read the inputs: {type(exc).__name__}: {exc}")
        return 1
    app, backward = build_engines(args, app_engine=app_engine, backward_engine=backward_engine)
    try:
        result = optimize_traces(args.traces, args.feedback, engine=backward)
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    print(f"\nused {result.used} trace(s) with feedback, skipped {result.skipped}")
    if not args.quiet:
        for key, texts in result.gradients.items():
            for text in texts[:3]:
                print(f"\ngradient on {key}:\n  {text.strip()[:400]}")
    patch = result.patch
    for item in patch.metadata.get("rejected", []):
        print(f"\nproposal rejected ({item.get('reason')}): {item.get('message')}")
    args.out.write_text(patch.to_json(), encoding="utf-8")
    print(f"\npatch saved to {args.out} ({len(patch.changes)} change(s))")
    print(patch.diff() if patch.changes else "(empty patch: nothing to deploy)")
    print_usage(result.usage)
    if not patch.changes:
        return 0
    # deploy time, possibly another process or machine: only the patch file travels
    Patch.from_json(args.out.read_text(encoding="utf-8"))  # what a reviewer would load
    down = next((g.metadata.get("input") for g in graphs for e in entries
                 if e.score == 0.0 and g.metadata.get("trace_id") == e.trace_id), None)
    try:
        deploy(args.out, app, args, down)
    except tg_bridge.TgBridgeError as exc:
        print(f"deploy refused: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
