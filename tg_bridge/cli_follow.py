"""``tg-bridge graph DIR_OR_GLOB --follow``: print each trace's graph as the collector writes it.

Reads the rotating files of an OTel Collector file exporter (``format: json`` or ``proto``) incrementally
(:func:`tg_bridge.traces.follow.follow_traces`), rebuilds one graph per completed trace and
prints it at once (text/mermaid/dot: a ``trace N`` comment then the body; json: one JSON
object per line). ``--checkpoint FILE`` makes a restart continue where the last one stopped.

Stops cleanly — after the trace being printed, with the checkpoint saved — on SIGTERM or the
first Ctrl-C (a second Ctrl-C interrupts at once, exit 130); ``--max-polls N`` bounds the run
(tests, cron jobs: ``--max-polls 2`` reads what is there and flushes it). A summary line goes to
stderr. Exit 0 when stopped; 2 for a missing source or a damaged checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ._utf8 import terminal_safe, terminal_safe_json
from .exceptions import UsageError

__all__ = ["add_follow_options", "add_poll_options", "check_follow_args", "run_follow", "stop_on_signals"]


def add_follow_options(parser: argparse.ArgumentParser) -> None:
    """The ``--follow`` options of ``tg-bridge graph``."""
    group = parser.add_argument_group("following a collector's rotating files")
    group.add_argument("--follow", action="store_true",
                       help="FILE is a directory or glob of collector files (JSON lines or protobuf): print each trace "
                            "as it completes, until SIGTERM/Ctrl-C or --max-polls")  # fmt: skip
    add_poll_options(group)


def add_poll_options(group: Any) -> None:
    """``--checkpoint``, ``--max-polls`` and ``--interval``: shared by every ``--follow`` mode
    (``graph``, ``optimize``); ``group`` is a parser or an argument group."""
    group.add_argument("--checkpoint", metavar="FILE",
                       help="with --follow: where to remember what was read (written atomically)")  # fmt: skip
    group.add_argument("--max-polls", type=int, metavar="N", help="with --follow: stop after N polls")
    group.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                       help="with --follow: wait between polls that found nothing (default 1)")  # fmt: skip


def run_follow(args: argparse.Namespace, fmt: str, render: Callable[[Any], Any]) -> int:
    """The ``--follow`` mode of ``tg-bridge graph`` (see the module docstring)."""
    from .reconstruction import reconstruct
    from .reconstruction.skips import describe_skipped
    from .traces.follow import TraceFollower, follow_traces

    source = args.file
    check_follow_args(source, args)
    follower = TraceFollower(source, args.checkpoint)
    stop = threading.Event()
    pool: dict[str, Any] = {}
    count = 0
    comment = {"text": "==", "mermaid": "%%", "dot": "//"}.get(fmt, "")
    with stop_on_signals(stop):
        traces = follow_traces(source, max_polls=args.max_polls, interval=args.interval, stop=stop,
                               follower=follower)  # fmt: skip
        for spans in traces:
            graph = reconstruct(spans, parameters=pool)
            count += 1
            meta = graph.metadata
            skipped = describe_skipped(meta.get("skipped_by_reason") or {}) if meta.get("skipped_spans") else ""
            if fmt == "json":
                section = {"trace_id": meta.get("trace_id", ""), "root": meta.get("root", ""),
                           "skipped": skipped, "graph": render(graph)}  # fmt: skip
                sys.stdout.write(terminal_safe_json(json.dumps(section, ensure_ascii=False)) + "\n")
            else:
                sys.stdout.write(terminal_safe(f"\n{comment} trace {count} {meta.get('trace_id', '')} "
                                               f"{meta.get('root', '')}".rstrip() + "\n"))  # fmt: skip
                if skipped:
                    sys.stdout.write(f"{comment} {skipped}\n")
                sys.stdout.write(terminal_safe(render(graph)))  # trace text: controls inert
            sys.stdout.flush()  # a follower is read live (| tee, a log shipper)
    stats = follower.stats
    sys.stderr.write(f"followed {source}: {count} trace(s), {len(pool)} parameter(s) in {stats.polls} poll(s); "
                     f"{stats.skipped()}\n")  # fmt: skip
    return 0


def check_follow_args(source: str, args: argparse.Namespace) -> None:
    """UsageError (exit 2, one line) for a follow ``source`` that names nothing (a directory,
    existing files or a glob pattern are accepted: a glob may match files written later) and
    for a bad ``--max-polls`` / ``--interval``."""
    if not os.path.isdir(source) and not glob.glob(source) and not glob.has_magic(source):
        raise UsageError(f"{source}: no such directory or file (with --follow: a directory or a glob)")
    if args.max_polls is not None and args.max_polls < 1:
        raise UsageError("--max-polls must be at least 1")
    if args.interval < 0:
        raise UsageError("--interval must not be negative")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and the first SIGINT set ``stop`` (the follower ends after the current trace,
    checkpoint saved); a second SIGINT raises KeyboardInterrupt. Only in the main thread
    (signal handlers cannot be installed elsewhere); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
