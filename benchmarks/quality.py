"""Quality harness: prompt optimization measured on held-out test sets, several tasks and seeds.

    python benchmarks/quality.py --task all --seeds 0,1,2 [--strategies single,candidates]
    python benchmarks/quality.py --task object_counting --engine openai:MODEL \
        --base-url http://HOST/v1 [--backward-engine openai:BIG_MODEL] [--steps 12] [--batch 3]

Tasks (benchmarks/quality_tasks.py): ``object_counting`` (TextGrad's BBH protocol: its
starting prompt, first 50 train / next 100 validation / rest test, batch 3, 12 steps, exact
match on the last number), ``docs_qa`` (exact-format QA over documents) and ``sentiment``
(positive/negative, the reply must be the label). The app is an ordinary LangChain chain
(system prompt + human template -> EngineChatModel -> StrOutputParser). Per run: test
accuracy before and after, validation before and after, calls and tokens of the optimization
and of the test evaluations, wall time. Several runs add a table per (task, strategy): mean
and spread (min..max) over seeds.

Strategies: ``single`` (one proposal per step, TextGrad's way) always; ``candidates``
(``candidates=K``) and ``pareto`` (``strategy="pareto"``) when this tg_bridge's optimize()
accepts them (else the run is reported as unavailable); ``--max-calls`` gives every strategy
the same call budget when optimize() has ``max_calls``.

Engines: ``--engine local`` (default) runs the app on the embedded Qwen2.5-Coder-0.5B and
lets tg_bridge choose the feedback model (the embedded Qwen2.5-Coder-1.5B);
``--engine local:smollm2`` is a fast smoke test (its numbers say nothing about the method);
``--engine openai:MODEL --base-url URL`` runs against any OpenAI-compatible endpoint (key in
OPENAI_API_KEY). ``--quick`` shrinks splits and steps. The last line is
``test_accuracy_before=<x> test_accuracy_after=<y>`` (means over all runs) for scripts.

Sweeps: ``--out FILE`` appends one JSON line per finished run (a failed run too, with its
error: a failure is a result), so a partial sweep survives; ``--resume`` skips the (task,
seed, strategy) runs already in FILE; ``--summarize FILE [FILE ...]`` prints the table of
runs recorded by several processes without running anything. A run that fails with a
TgBridgeError is recorded and the sweep goes on (exit code 1 at the end).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tg_bridge
from tg_bridge.engines.sync import run_sync

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_tasks import COUNTING_PROMPT, TASKS, Task  # noqa: E402

#: TextGrad's starting system prompt for BBH object counting.
STARTING_PROMPT = COUNTING_PROMPT
STRATEGIES = ("single", "candidates", "pareto")
FULL = {"steps": 12, "batch": 3}
QUICK = {"steps": 2, "batch": 3}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="object_counting",
                        help=f"comma-separated tasks or 'all' ({', '.join(TASKS)})")
    parser.add_argument("--seeds", default=None, help="comma-separated data seeds (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="one data seed (= --seeds N)")
    parser.add_argument("--strategies", default="single",
                        help=f"comma-separated, of {', '.join(STRATEGIES)} (default single)")
    parser.add_argument("--candidates", type=int, default=4,
                        help="K for the candidates/pareto strategies (default 4)")
    parser.add_argument("--max-calls", type=int, default=None,
                        help="call budget per run, the same for every strategy")
    parser.add_argument("--engine", default="local",
                        help="the app's model (local | local:smollm2 | openai:MODEL)")
    parser.add_argument("--base-url", default=None, help="base URL of an OpenAI-compatible API")
    parser.add_argument("--backward-engine", default=None,
                        help="feedback/update model (default: tg_bridge's choice)")
    parser.add_argument("--quick", action="store_true", help="small splits, few steps")
    parser.add_argument("--steps", type=int, default=None, help="optimization steps (12)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (3)")
    parser.add_argument("--train", type=int, default=None, help="train examples (task's)")
    parser.add_argument("--val", type=int, default=None, help="validation examples (task's)")
    parser.add_argument("--test", type=int, default=None, help="test examples (task's)")
    parser.add_argument("--mode", default="edge", choices=("edge", "fused"))
    parser.add_argument("--answer-tokens", type=int, default=None,
                        help="max tokens per app answer (default: 64 local, 512 remote)")
    parser.add_argument("--feedback-tokens", type=int, default=256,
                        help="max tokens per feedback/update answer of a local backward "
                             "engine given by --backward-engine (and of SmolLM2's)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="per-call timeout and deadline in seconds for every engine call "
                             "(default: tg_bridge's, 120 s); a loaded 2-core machine can need "
                             "minutes for one 1.5B feedback answer")
    parser.add_argument("--store", default=None, help="run store (default: a temporary file)")
    parser.add_argument("--json", action="store_true", help="also print the report(s) as JSON")
    parser.add_argument("--out", default=None,
                        help="append one JSON line per finished (or failed) run to this file")
    parser.add_argument("--resume", action="store_true",
                        help="skip the runs already recorded in --out")
    parser.add_argument("--summarize", nargs="+", default=None, metavar="FILE",
                        help="print the table of the runs recorded in these --out files; "
                             "run nothing")
    args = parser.parse_args(argv)
    if args.resume and not args.out:
        parser.error("--resume needs --out")
    names = list(TASKS) if args.task == "all" else [t.strip() for t in args.task.split(",")]
    unknown = [n for n in names if n not in TASKS]
    if unknown or not names:
        parser.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    args.tasks = names
    if args.seed is not None and args.seeds is not None:
        parser.error("give --seed or --seeds, not both")
    seeds = args.seeds if args.seeds is not None else str(args.seed or 0)
    try:
        args.seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--seeds must be integers, got {seeds!r}")
    args.strategy_list = [x.strip() for x in args.strategies.split(",") if x.strip()]
    bad = [x for x in args.strategy_list if x not in STRATEGIES]
    if bad or not args.strategy_list or not args.seed_list:
        parser.error(f"--strategies must be of {', '.join(STRATEGIES)}; --seeds non-empty")
    sizes = QUICK if args.quick else FULL
    for name, default in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be > 0")
    for name in ("steps", "batch", "train", "val", "test", "candidates"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")
    if args.answer_tokens is None:
        args.answer_tokens = 64 if args.engine.startswith("local") else 512
    return args


def task_sizes(args: argparse.Namespace, task: Task) -> tuple[int, int, int]:
    default = task.quick if args.quick else task.sizes
    given = (args.train, args.val, args.test)
    return tuple(g if g is not None else d for g, d in zip(given, default))  # type: ignore


def build_chain(model: Any, task: Task | None = None) -> tuple[Any, Any]:
    """The app: the task's system prompt + human template -> model -> text."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    task = task or TASKS["object_counting"]
    prompt = ChatPromptTemplate.from_messages([("system", task.system), ("human", task.human)])
    return prompt | model | StrOutputParser(), prompt


async def accuracy(chain: Any, examples: Sequence[dict[str, Any]],
                   task: Task | None = None) -> float:
    """Accuracy of ``chain`` on ``examples`` under the task's metric (app errors score 0)."""
    metric = (task or TASKS["object_counting"]).metric
    outputs = await chain.abatch([e["inputs"] for e in examples], return_exceptions=True)
    scores = [0.0 if isinstance(out, BaseException) else metric(e, out)[0]
              for e, out in zip(examples, outputs)]
    return sum(scores) / len(scores) if scores else 0.0


def steps_trainset(train: Sequence[dict[str, Any]], steps: int, batch: int) -> list[dict]:
    """``steps * batch`` training examples, cycling through ``train`` (one epoch of exactly
    ``steps`` batches; optimize() shuffles them deterministically)."""
    return [train[i % len(train)] for i in range(steps * batch)]


def _build(spec: str, args: argparse.Namespace, **kw: Any) -> Any:
    if spec.split(":", 1)[0] == "openai" and args.base_url:
        kw["base_url"] = args.base_url
    return tg_bridge.engine(spec, **kw)


def _is_smollm2(engine: Any) -> bool:
    return getattr(engine, "model_name", "") == "smollm2"


def engines(args: argparse.Namespace, app: Any = None, backward: Any = None) -> tuple[Any, Any]:
    """(app engine, backward engine or None = let optimize() choose)."""
    app = app if app is not None else _build(args.engine, args)
    if backward is None:
        if args.backward_engine:
            spec = args.backward_engine
            kw = {}
            if spec.startswith("local") and "smollm2" in spec:
                kw = {"max_tokens": args.feedback_tokens, "repeat_penalty": 1.3}
            elif spec.startswith("local"):
                kw = {"max_tokens": args.feedback_tokens}
            backward = _build(spec, args, **kw)
        elif _is_smollm2(app):
            # SmolLM2 otherwise loops until the token cap and its proposals cannot be read
            backward = tg_bridge.engine("local:smollm2", max_tokens=args.feedback_tokens,
                                        repeat_penalty=1.3)
    return app, backward


def strategy_kwargs(strategy: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """optimize() keyword arguments for ``strategy``; None when this tg_bridge lacks it."""
    from tg_bridge.loop.driver import aoptimize

    params = inspect.signature(aoptimize).parameters
    kw: dict[str, Any] = {}
    if args.max_calls is not None:
        if "max_calls" not in params:
            return None
        kw["max_calls"] = args.max_calls
    if strategy == "single":
        return {**kw, "candidates": 1} if "candidates" in params else kw
    if "candidates" not in params:
        return None
    kw["candidates"] = args.candidates
    if strategy == "pareto":
        if "strategy" not in params:
            return None
        kw["strategy"] = "pareto"
    return kw


def run(args: argparse.Namespace, *, app_engine: Any = None, backward_engine: Any = None,
        task: str | None = None, seed: int | None = None,
        strategy: str = "single") -> dict[str, Any]:
    """One run of the protocol; returns the report (a dict of plain values)."""
    from tg_bridge_langchain import EngineChatModel

    spec = TASKS[task or args.tasks[0]]
    seed = args.seed_list[0] if seed is None else seed
    extra = strategy_kwargs(strategy, args)
    base = {"task": spec.name, "seed": seed, "strategy": strategy}
    if extra is None:
        return {**base, "unavailable": f"this tg_bridge's optimize() has no {strategy!r} "
                "strategy (or no max_calls budget)"}
    app, backward = engines(args, app_engine, backward_engine)
    train, val, test = spec.data(seed, task_sizes(args, spec))
    model = EngineChatModel(engine=app, max_tokens=args.answer_tokens)
    chain, prompt = build_chain(model, spec)
    started = time.perf_counter()
    with tg_bridge.usage() as test_before_usage:
        before = run_sync(accuracy(chain, test, spec))
    optimize_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "runs.db")
        chosen = {"engine": backward, "backward_engine": backward} if backward else {}
        result = tg_bridge.optimize(
            chain, steps_trainset(train, args.steps, args.batch), valset=val,
            metric=spec.metric, batch_size=args.batch, mode=args.mode, progress=False,
            store=store, seed=seed, **chosen, **extra,
        )
    optimize_seconds = time.perf_counter() - optimize_started
    with tg_bridge.usage() as test_after_usage:
        after = run_sync(accuracy(chain, test, spec))
    opt = result.total_usage()
    feedback = getattr(result, "feedback_engine", "") or getattr(backward, "id", str(backward))
    return {
        **base, "engine": getattr(app, "id", str(app)),
        "backward_engine": feedback,
        "model": getattr(app, "model", ""), "mode": args.mode,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "steps": len(result.history), "batch": args.batch,
        "accepted_steps": result.accepted_steps,
        "val_before": result.baseline_score, "val_after": result.best_score,
        "test_before": before, "test_after": after,
        "optimization_calls": opt.get("calls", 0),
        "optimization_tokens": opt.get("prompt_tokens", 0) + opt.get("completion_tokens", 0),
        "usage_per_phase": result.usage,
        "test_eval_calls": test_before_usage.calls + test_after_usage.calls,
        "test_eval_tokens": test_before_usage.total_tokens + test_after_usage.total_tokens,
        "optimize_seconds": round(optimize_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": _load_average(),
        "final_prompt": prompt.messages[0].prompt.template,
    }


def _load_average() -> float | None:
    """The machine's 1-minute load average at the end of a run (None where unsupported):
    wall times mean little without it on a shared machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def read_runs(paths: Sequence[str]) -> list[dict[str, Any]]:
    """The run records of ``--out`` files; a line cut short by a killed process is skipped
    (with a note), since a sweep's file must stay readable whatever happened to it."""
    reports = []
    for path in paths:
        file = Path(path)
        if not file.exists():
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                print(f"{path}:{number}: not a JSON run record, skipped", file=sys.stderr)
                continue
            if isinstance(record, dict) and {"task", "seed", "strategy"} <= record.keys():
                reports.append(record)
    return reports


def _append(path: str, report: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(report, default=str) + "\n")


def print_report(report: dict[str, Any], *, as_json: bool = False) -> None:
    sizes = report["sizes"]
    rows = [
        ("task", f"{report['task']} (seed {report['seed']}, {report['strategy']})"),
        ("app engine", f"{report['engine']} ({report['model']})"),
        ("backward engine", report["backward_engine"]),
        ("splits train/val/test", f"{sizes['train']}/{sizes['val']}/{sizes['test']}"),
        ("steps x batch", f"{report['steps']} x {report['batch']} ({report['mode']} mode)"),
        ("accepted steps", ", ".join(map(str, report["accepted_steps"])) or "none"),
        ("validation accuracy", f"{report['val_before']:.3f} -> {report['val_after']:.3f}"),
        ("test accuracy", f"{report['test_before']:.3f} -> {report['test_after']:.3f}"),
        ("optimization calls/tokens",
         f"{report['optimization_calls']} / {report['optimization_tokens']}"),
        ("test-eval calls/tokens", f"{report['test_eval_calls']} / {report['test_eval_tokens']}"),
        ("wall time", f"{report['wall_seconds']} s (optimize {report['optimize_seconds']} s)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("usage per phase:")
    for phase, counters in report["usage_per_phase"].items():
        tokens = counters.get("prompt_tokens", 0) + counters.get("completion_tokens", 0)
        print(f"  {phase:<9} {counters.get('calls', 0):>5} calls {tokens:>8} tokens")
    print(f"final system prompt:\n  {report['final_prompt']!r}")
    if as_json:
        print(json.dumps(report, default=str))
    print(f"test_accuracy_before={report['test_before']:.4f} "
          f"test_accuracy_after={report['test_after']:.4f}")


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.2f} ({min(values):.2f}..{max(values):.2f})"


def summary_rows(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, strategy): means and ranges over seeds."""
    rows = []
    keys = sorted({(r["task"], r["strategy"]) for r in reports},
                  key=lambda k: (list(TASKS).index(k[0]), STRATEGIES.index(k[1])))
    for task, strategy in keys:
        runs = [r for r in reports if (r["task"], r["strategy"]) == (task, strategy)]
        done = [r for r in runs if "unavailable" not in r and "failed" not in r]
        failed = [r for r in runs if "failed" in r]
        row: dict[str, Any] = {"task": task, "strategy": strategy, "runs": len(done),
                               "seeds": [r["seed"] for r in done],
                               "failed": [f"seed {r['seed']}: {r['failed']}" for r in failed]}
        if not done and not failed:
            row["unavailable"] = runs[0]["unavailable"]
        elif done:
            for key in ("test_before", "test_after", "val_before", "val_after"):
                row[key] = _spread([float(r[key]) for r in done])
            for key in ("optimization_calls", "optimization_tokens", "optimize_seconds"):
                row[key] = round(statistics.fmean(float(r[key]) for r in done))
            row["kept_runs"] = sum(1 for r in done if r["accepted_steps"])
            loads = [r["load_average"] for r in done if r.get("load_average") is not None]
            row["load_average"] = (f"{min(loads):.1f}..{max(loads):.1f}" if loads else "-")
        rows.append(row)
    return rows


def print_summary(reports: Sequence[dict[str, Any]], *, as_json: bool = False) -> None:
    print("\n| task | strategy | runs | test before | test after | val before | val after "
          "| runs with a kept step | calls | tokens | optimize s | load avg | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = summary_rows(reports)
    for row in rows:
        failed = len(row["failed"])
        if "unavailable" in row:
            print(f"| {row['task']} | {row['strategy']} | 0 | {row['unavailable']} |"
                  + " |" * 9)
            continue
        if not row["runs"]:
            print(f"| {row['task']} | {row['strategy']} | 0 |" + " |" * 9 + f" {failed} |")
            continue
        print(f"| {row['task']} | {row['strategy']} | {row['runs']} | {row['test_before']} "
              f"| {row['test_after']} | {row['val_before']} | {row['val_after']} "
              f"| {row['kept_runs']}/{row['runs']} | {row['optimization_calls']} "
              f"| {row['optimization_tokens']} | {row['optimize_seconds']} "
              f"| {row['load_average']} | {failed} |")
    for row in rows:
        for failure in row["failed"]:
            print(f"failed: {row['task']} {row['strategy']} {failure}")
    if as_json:
        print(json.dumps(list(reports), default=str))
    done = [r for r in reports if "unavailable" not in r and "failed" not in r]
    before = statistics.fmean(r["test_before"] for r in done) if done else 0.0
    after = statistics.fmean(r["test_after"] for r in done) if done else 0.0
    print(f"test_accuracy_before={before:.4f} test_accuracy_after={after:.4f}")


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run and print; returns the exit code. Engines passed here override ``--engine``."""
    args = parse_args(argv)
    if args.summarize:
        recorded = read_runs(args.summarize)
        if not recorded:
            print("quality harness: no run recorded in " + ", ".join(args.summarize),
                  file=sys.stderr)
            return 1
        print_summary(recorded, as_json=args.json)
        return 0
    if args.timeout is not None:
        tg_bridge.configure(timeout=args.timeout, deadline=args.timeout)
    plan = [(t, s, st) for t in args.tasks for s in args.seed_list for st in args.strategy_list]
    if args.resume:
        seen = {(r["task"], r["seed"], r["strategy"]) for r in read_runs([args.out])}
        skipped = [p for p in plan if p in seen]
        plan = [p for p in plan if p not in seen]
        if skipped:
            print(f"resuming: {len(skipped)} run(s) already in {args.out}, {len(plan)} to go",
                  flush=True)
    reports = []
    for task, seed, strategy in plan:
        started = time.perf_counter()
        try:
            report = run(args, app_engine=app_engine, backward_engine=backward_engine,
                         task=task, seed=seed, strategy=strategy)
        except tg_bridge.TgBridgeError as exc:
            error = f"{type(exc).__name__}: {exc}"
            print(f"quality harness: run failed ({task}, seed {seed}, {strategy}): {error}",
                  file=sys.stderr, flush=True)
            report = {"task": task, "seed": seed, "strategy": strategy, "failed": error,
                      "wall_seconds": round(time.perf_counter() - started, 1),
                      "load_average": _load_average()}
        reports.append(report)
        if args.out:
            _append(args.out, report)
        if len(plan) > 1:
            if "unavailable" in report:
                print(f"{task} seed {seed} {strategy}: unavailable ({report['unavailable']})")
            elif "failed" not in report:
                print(f"{task} seed {seed} {strategy}: test {report['test_before']:.2f} -> "
                      f"{report['test_after']:.2f}, val {report['val_before']:.2f} -> "
                      f"{report['val_after']:.2f}, {report['optimization_calls']} calls, "
                      f"{report['optimize_seconds']} s; prompt {report['final_prompt']!r}",
                      flush=True)
    if not reports:
        print("quality harness: nothing left to run", file=sys.stderr)
        return 0
    failed = any("failed" in r for r in reports)
    if len(plan) == 1 and not failed:
        if "unavailable" in reports[0]:
            print(f"quality harness: {reports[0]['unavailable']}", file=sys.stderr)
            return 1
        print_report(reports[0], as_json=args.json)
    else:
        print_summary(reports, as_json=args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
