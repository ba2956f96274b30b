"""``tg-bridge optimize``: propose a Patch from production traces and user feedback.

::

    tg-bridge optimize --traces prod.otlp.json --feedback feedback.jsonl \\
        --engine openai:gpt-4o-mini --out patch.json [--mode edge|fused] [--constraint TEXT]
    tg-bridge optimize --mlflow http://127.0.0.1:5000 --experiment NAME --engine ... --out patch.json
    tg-bridge optimize --phoenix http://127.0.0.1:6006 --project NAME --engine ... --out patch.json
    tg-bridge optimize --follow /var/lib/otelcol/ --checkpoint follow.ckpt --engine ... --out patch.json

``--follow`` (:mod:`tg_bridge.cli_optimize_follow`) reads a collector's rotating files as they
are written, with the feedback recorded as spans of each trace, and keeps ONE cumulative patch.

No live app is needed: the Patch names prompts by binding key or identity (``name#hash``), and
``tg_bridge.apply_patch(app, "patch.json")`` applies it at deploy time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ._utf8 import terminal_safe
from .exceptions import MissingExtraError, UsageError

__all__ = ["register", "run_optimize"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "optimize",
        help="propose better prompts from trace files and user feedback (writes a patch)",
        description=(
            "Rebuild each trace of an OTLP JSON file that has feedback, use the feedback "
            '(JSONL lines {"trace_id", "score"?, "text"?}) as the loss, run backward and '
            "write the proposed prompt changes as a patch JSON file."
        ),
    )
    parser.add_argument("--traces", help="OTLP JSON trace file")
    parser.add_argument("--feedback",
                        help="feedback JSONL file (end-user text: treated as untrusted data)")
    parser.add_argument("--mlflow", metavar="URL",
                        help="instead of --traces/--feedback: read traces and their feedback"
                             " assessments from this MLflow tracking server (needs"
                             " tg-bridge-mlflow; with --experiment)")
    parser.add_argument("--experiment", help="the MLflow experiment holding the traces")
    parser.add_argument("--phoenix", metavar="URL",
                        help="instead of --traces/--feedback: read the spans of a project and"
                             " their annotations (scores, labels, explanations: untrusted data)"
                             " from this Arize Phoenix server (with --project)")
    parser.add_argument("--project", help="the Phoenix project holding the traces")
    parser.add_argument("--engine", default=None,
                        help="engine spec for gradients and updates, e.g. openai:MODEL or local"
                             " (default: the configured engine)")
    parser.add_argument("--out", required=True, help="where to write the patch JSON")
    parser.add_argument("--mode", choices=("edge", "fused"), default="edge",
                        help="backward mode (default: edge)")
    parser.add_argument("--constraint", action="append", default=[],
                        help="a rule every new prompt must respect (repeatable)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    from .cli_optimize_follow import add_options

    add_options(parser)
    parser.set_defaults(func=run_optimize)


def run_optimize(args: argparse.Namespace) -> int:
    from . import engines
    from .cli_optimize_follow import check_not_following, run_optimize_follow
    from .offline import optimize_traces, read_feedback

    if args.follow:
        return run_optimize_follow(args, engines)
    check_not_following(args)
    if args.phoenix or args.project:
        result = _from_phoenix(args, engines)
    elif args.mlflow or args.experiment:
        result = _from_mlflow(args, engines)
    else:
        for label, path in (("--traces", args.traces), ("--feedback", args.feedback)):
            if not path or not os.path.isfile(path):
                raise UsageError(f"{label} {path}: no such file (give --traces and --feedback,"
                                 " or --mlflow URL --experiment NAME)")
        entries = read_feedback(args.feedback)  # bad input fails before any engine is built
        engine = engines.resolve_engine(args.engine or None, backward=True)  # once, passed down
        result = optimize_traces(args.traces, entries, engine=engine, mode=args.mode,
                                 constraints=args.constraint)
    if not result.patch.changes:  # an empty patch must not look like success
        sys.stderr.write(f"tg-bridge optimize: nothing to change: {_why_unchanged(result)}\n")
        return 1
    result.patch.save(args.out)  # atomic: never a half-written patch
    rejected = result.patch.metadata.get("rejected") or []
    summary = {
        "out": args.out,
        "changes": [c.target for c in result.patch.changes],
        "rejected": [r.get("target") for r in rejected if isinstance(r, dict)],
        "traces_used": result.used,
        "skipped": result.skipped,
        "usage": result.usage,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    calls = sum(int(u.get("calls", 0)) for u in result.usage.values())
    sys.stdout.write(
        f"wrote {args.out}: {len(result.patch.changes)} change(s) from {result.used} trace(s)"
        f" with feedback ({calls} engine calls)\n"
    )
    for change in result.patch.changes:  # targets name trace spans: surrogates, controls inert
        sys.stdout.write(terminal_safe(f"  {change.target}\n"))
    for item in summary["rejected"]:
        sys.stdout.write(terminal_safe(f"  rejected: {item}\n"))
    return 0


def _from_mlflow(args: argparse.Namespace, engines: Any) -> Any:
    """The proposal from an MLflow server's traces and feedback (tg_bridge_mlflow)."""
    if not (args.mlflow and args.experiment) or args.traces or args.feedback:
        raise UsageError("--mlflow URL and --experiment NAME go together, without --traces"
                         " and --feedback")
    try:
        from tg_bridge_mlflow import optimize_traces as from_mlflow  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise MissingExtraError("reading traces from MLflow", "pip install tg-bridge-mlflow"
                                ) from exc
    engine = engines.resolve_engine(args.engine or None, backward=True)  # once, passed down
    return from_mlflow(args.experiment, tracking_uri=args.mlflow, engine=engine, mode=args.mode,
                       constraints=args.constraint)


def _from_phoenix(args: argparse.Namespace, engines: Any) -> Any:
    """The proposal from a Phoenix project's traces and annotations."""
    if (not (args.phoenix and args.project) or args.traces or args.feedback or args.mlflow
            or args.experiment):
        raise UsageError("--phoenix URL and --project NAME go together, without --traces,"
                         " --feedback, --mlflow and --experiment")
    from .offline_phoenix import gather, propose

    gathered = gather(args.phoenix, args.project)  # a bad server fails before any engine is built
    engine = engines.resolve_engine(args.engine or None, backward=True)  # once, passed down
    return propose(gathered, engine=engine, mode=args.mode, constraints=args.constraint)


def _why_unchanged(result: Any) -> str:
    """One line saying why a run with feedback proposed no change."""
    if not result.used:
        return "no trace in the file had usable feedback"
    if not result.gradients:
        return (f"the {result.used} trace(s) with feedback hold no prompt to optimize (none of "
                "their LLM calls has a system prompt or template that could be read; "
                "`tg-bridge graph` shows the skipped spans)")
    reached = sum(1 for texts in result.gradients.values() if texts)
    rejected = [r for r in result.patch.metadata.get("rejected") or [] if isinstance(r, dict)]
    if not reached:
        return (f"the feedback on {result.used} trace(s) reached none of the {len(result.gradients)} "
                "prompt(s) found (no output with feedback is connected to an LLM call that used "
                "them; `tg-bridge graph` shows the skipped spans)")
    if rejected:
        reasons = sorted({str(r.get("reason", "")).split(":")[0] for r in rejected} - {""})
        return (f"all {len(rejected)} proposed change(s) were rejected by the checks"
                f"{': ' + ', '.join(reasons[:3]) if reasons else ''}")
    return f"the optimizer kept the {reached} prompt(s) that got feedback unchanged"
