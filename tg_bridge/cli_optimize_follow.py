"""``tg-bridge optimize --follow DIR_OR_GLOB --out patch.json``: optimize while the collector writes.

Follows the OTel Collector's rotating files (JSON lines or protobuf) like ``tg-bridge graph --follow``
(:class:`tg_bridge.traces.follow.TraceFollower`, the same checkpoint, polls and signal
handling), takes the feedback from the ``tg_bridge.feedback`` spans of each trace and runs one
descent step every ``--batch`` traces with feedback (:mod:`tg_bridge.offline_follow`, which
states how steps compose into ONE cumulative patch and in which order the patch and the
checkpoint are saved). One progress line per step goes to stderr.

Exit codes: 0 when the run stopped (``--max-polls``, SIGTERM, first Ctrl-C) and the patch holds
at least one change; 1 with one line saying why when nothing was changed (or an engine error);
2 for usage errors (mixed sources, a missing source, a damaged checkpoint or patch file).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import threading
from typing import Any

from ._utf8 import terminal_safe
from .exceptions import UsageError

__all__ = ["add_options", "check_not_following", "run_optimize_follow"]


def add_options(parser: argparse.ArgumentParser) -> None:
    """The ``--follow`` options of ``tg-bridge optimize``."""
    from .cli_follow import add_poll_options

    group = parser.add_argument_group("following a collector's rotating files (docs/collector.md)")
    group.add_argument("--follow", metavar="DIR_OR_GLOB",
                       help="instead of --traces/--feedback: follow the collector's files (JSON lines or protobuf); the "
                            "feedback is the tg_bridge.feedback spans of each trace (untrusted data)")  # fmt: skip
    add_poll_options(group)
    group.add_argument("--batch", type=int, metavar="K",
                       help="with --follow: traces with feedback per descent step (default 8; a pause "
                            "in the stream or the end of --max-polls runs a step over fewer)")  # fmt: skip


def check_not_following(args: argparse.Namespace) -> None:
    """UsageError for follow-only options given without ``--follow``."""
    if args.checkpoint or args.max_polls is not None or args.batch is not None:
        raise UsageError("--checkpoint, --max-polls and --batch need --follow DIR_OR_GLOB")


def run_optimize_follow(args: argparse.Namespace, engines: Any) -> int:
    """``optimize --follow`` (see the module docstring); returns the exit code."""
    from .cli_follow import check_follow_args, stop_on_signals
    from .offline_follow import DEFAULT_BATCH, FollowOptimizer, StreamPatch, optimize_follow
    from .traces.follow import TraceFollower

    mixed = [flag for flag, value in (("--traces", args.traces), ("--feedback", args.feedback),
                                      ("--mlflow", args.mlflow), ("--experiment", args.experiment),
                                      ("--phoenix", args.phoenix), ("--project", args.project)) if value]  # fmt: skip
    if mixed:
        raise UsageError(f"--follow reads the traces and their feedback spans from the collector's files;"
                         f" drop {', '.join(mixed)}")  # fmt: skip
    source = args.follow
    check_follow_args(source, args)
    if _followed(source, args.out):
        raise UsageError(f"--out {args.out} is inside the followed files {source}: write the patch elsewhere")
    batch = DEFAULT_BATCH if args.batch is None else args.batch
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    # bad input fails before any engine is built: the patch to continue, then the checkpoint
    state = StreamPatch.resume(args.out, source, args.checkpoint)
    follower = TraceFollower(source, args.checkpoint)
    engine = engines.resolve_engine(args.engine or None, backward=True)  # once, passed down
    optimizer = FollowOptimizer(state, args.out, engine=engine, mode=args.mode, constraints=args.constraint,
                                batch=batch, on_step=_progress)  # fmt: skip
    stop = threading.Event()
    with stop_on_signals(stop):
        optimize_follow(follower, optimizer, max_polls=args.max_polls, interval=args.interval, stop=stop)
    stats = follower.stats
    sys.stderr.write(f"followed {source}: {optimizer.read} trace(s) read, {optimizer.with_feedback} with feedback"
                     f" ({optimizer.read - optimizer.with_feedback} without: dropped) in {stats.polls} poll(s);"
                     f" {stats.skipped()}\n")  # fmt: skip
    if not state.changes:  # an empty patch must not look like success
        sys.stderr.write(f"tg-bridge optimize: nothing to change: {_why_unchanged(optimizer)}\n")
        return 1
    calls = sum(int(u.get("calls", 0)) for u in state.usage.values())
    if args.json:
        summary = {"out": args.out, "changes": list(state.changes), "rejected": [r["target"] for r in state.rejected],
                   "steps": state.steps, "traces_used": state.traces_used, "traces_read": optimizer.read,
                   "with_feedback": optimizer.with_feedback, "usage": state.usage}  # fmt: skip
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    sys.stdout.write(f"{args.out}: {len(state.changes)} change(s) from {state.traces_used} trace(s) with feedback"
                     f" in {state.steps} step(s) ({calls} engine calls)\n")  # fmt: skip
    for target in state.changes:  # targets name trace spans: surrogates, controls inert
        sys.stdout.write(terminal_safe(f"  {target}\n"))
    return 0


def _progress(report: Any) -> None:
    note = f"; {report.note}" if report.note else ""
    sys.stderr.write(f"step {report.step}: {report.traces_read} trace(s) read, {report.with_feedback} with feedback;"
                     f" {report.used} of {report.batch} used, {report.proposed} prompt(s) changed, patch holds"
                     f" {report.changes} change(s), {report.calls} engine call(s){note}\n")  # fmt: skip
    sys.stderr.flush()


def _followed(source: str, out: str) -> bool:
    """Whether the patch file would be one of the followed files (read back as traces)."""
    target = os.path.abspath(out)
    if os.path.isdir(source):
        name = os.path.basename(target)
        return os.path.dirname(target) == os.path.abspath(source) and not name.startswith(".")
    return fnmatch.fnmatch(target, os.path.abspath(source))


def _why_unchanged(optimizer: Any) -> str:
    """One line, in the words of ``optimize --traces`` (cli_optimize._why_unchanged)."""
    from .cli_optimize import _why_unchanged as why

    if not optimizer.with_feedback:
        return (f"none of the {optimizer.read} trace(s) read had usable feedback (a tg_bridge.feedback"
                " span with a score or a text; see docs/collector.md)")  # fmt: skip
    last = optimizer.last
    if last is None or not last.used:
        detail = optimizer.last_note or "none could be rebuilt as a graph"
        return f"the {optimizer.with_feedback} trace(s) with feedback could not be used: {detail}"
    return str(why(last))
