"""``tg-bridge runs`` (list optimization runs) and ``tg-bridge show`` (a patch or a run).

::

    tg-bridge runs [--store PATH] [--json] [--limit N]
    tg-bridge show patch.json            # the diff
    tg-bridge show RUN_ID [--step N]     # the history, and the diff of that version
    tg-bridge export RUN_ID --out patch.json [--step N]   # that version as a patch file

An unknown run id is a usage error (exit 2), like a missing file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from typing import Any

from .exceptions import UsageError

__all__ = ["register", "run_export", "run_runs", "run_show"]


def register(subparsers: Any) -> None:
    runs = subparsers.add_parser("runs", help="list optimization runs in the run store",
                                 description="List the runs of the run store, newest first.")
    runs.add_argument("--store", default=None, help="run store path (default: settings.store)")
    runs.add_argument("--limit", type=int, default=None, help="show at most N runs")
    runs.add_argument("--json", action="store_true", help="JSON output")
    runs.set_defaults(func=run_runs)

    show = subparsers.add_parser(
        "show", help="show a patch file's diff, or a run's history and diff",
        description="Show a patch JSON file as a diff, or a stored run's steps and the diff"
                    " of its best (or --step N) version.")
    show.add_argument("what", help="a patch JSON file or a run id (a unique prefix works)")
    show.add_argument("--store", default=None, help="run store path (default: settings.store)")
    show.add_argument("--step", type=int, default=None, help="the version after step N")
    show.add_argument("--json", action="store_true", help="JSON output")
    show.set_defaults(func=run_show)

    export = subparsers.add_parser(
        "export", help="write a run's best (or --step N) version as a patch JSON file",
        description="Write the patch from a stored run's original prompts to its latest accepted"
                    " (or --step N) version, for review and tg_bridge.apply_patch at deploy time.")
    export.add_argument("run_id", help="a run id (a unique prefix works)")
    export.add_argument("--out", required=True, help="where to write the patch JSON")
    export.add_argument("--store", default=None, help="run store path (default: settings.store)")
    export.add_argument("--step", type=int, default=None, help="the version after step N")
    export.set_defaults(func=run_export)


def _store(path: str | None) -> Any:
    from .config import get_settings
    from .store import RunStore

    path = path or get_settings().store
    if not os.path.exists(path):
        raise UsageError(f"no run store at {path} (nothing has been optimized here yet)")
    return RunStore(path)


def _run(store: Any, run_id: str) -> Any:
    """The stored run, or a UsageError (exit 2) naming the id and the store."""
    from .exceptions import StoreError

    try:
        return store.get_run(run_id)
    except StoreError as exc:
        if "no run" not in str(exc):
            raise  # the store itself is broken: a run-time failure
        raise UsageError(f"no run {run_id!r} in {store.path} (list them with: tg-bridge runs"
                         f" --store {store.path})") from exc


def _version(store: Any, run_id: str, step: int | None) -> Any:
    from .exceptions import StoreError

    try:
        return store.version(run_id, step)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def run_runs(args: argparse.Namespace) -> int:
    runs = _store(args.store).runs(limit=args.limit)
    if args.json:
        doc = [{"id": r.id, "name": r.name, "status": r.status, "created": r.created,
                "finished": r.finished, "steps": r.steps_done, "baseline_score": r.baseline_score,
                "best_score": r.best_score, "final_score": r.final_score} for r in runs]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if not runs:
        sys.stdout.write("no runs\n")
        return 0
    sys.stdout.write(f"{'RUN':16}  {'STARTED':19}  {'STATUS':9}  {'STEPS':>5}  "
                     f"{'BASELINE':>8}  {'FINAL':>8}  NAME\n")
    for r in runs:
        sys.stdout.write(f"{r.id:16}  {_when(r.created):19}  {r.status:9}  {r.steps_done:>5}  "
                         f"{_fmt(r.baseline_score):>8}  {_fmt(r.final_score):>8}  {r.name}\n")
    return 0


def run_show(args: argparse.Namespace) -> int:
    if os.path.isfile(args.what):
        return _show_patch(args)
    store = _store(args.store)
    info = _run(store, args.what)
    steps = store.steps(info.id)
    patch = _version(store, info.id, args.step)
    if args.json:
        doc = {
            "run": {"id": info.id, "name": info.name, "status": info.status,
                    "baseline_score": info.baseline_score, "final_score": info.final_score,
                    "config": dict(info.config)},
            "steps": [{"step": s.step, "epoch": s.epoch, "batch": list(s.batch),
                       "score": s.score, "before": s.before, "accepted": s.accepted,
                       "reason": s.reason, "usage": dict(s.usage)} for s in steps],
            "patch": json.loads(patch.to_json()),
        }
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return 0
    out = sys.stdout
    out.write(f"run {info.id} {info.name!r}: {info.status}, baseline {_fmt(info.baseline_score)},"
              f" final {_fmt(info.final_score)}\n")
    for s in steps:
        decision = "kept" if s.accepted else ("reverted" if s.score is not None else "skipped")
        calls = sum(int(u.get("calls", 0)) for u in s.usage.values())
        note = f"  ({s.reason})" if s.reason else ""
        out.write(f"  step {s.step:>3} epoch {s.epoch}: {_fmt(s.before)} -> {_fmt(s.score)}"
                  f" {decision}, {calls} calls{note}\n")
    label = f"after step {args.step}" if args.step is not None else "latest accepted version"
    out.write(f"\n{label}: {len(patch.changes)} change(s)\n")
    out.write(patch.diff())
    return 0


def _show_patch(args: argparse.Namespace) -> int:
    from .exceptions import PatchValidationError
    from .patching.patch import Patch

    try:
        patch = Patch.load(args.what)
    except PatchValidationError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        sys.stdout.write(patch.to_json() + "\n")
        return 0
    rejected = patch.metadata.get("rejected") or []
    sys.stdout.write(f"{args.what}: {len(patch.changes)} change(s)\n")
    sys.stdout.write(patch.diff())
    for item in rejected:
        if isinstance(item, dict):
            sys.stdout.write(f"rejected {item.get('target')}: {item.get('reason')}\n")
    return 0


def run_export(args: argparse.Namespace) -> int:
    store = _store(args.store)
    info = _run(store, args.run_id)
    patch = _version(store, info.id, args.step)
    patch.save(args.out)
    label = f"after step {args.step}" if args.step is not None else "latest accepted version"
    sys.stdout.write(f"wrote {args.out}: {len(patch.changes)} change(s), run {info.id} ({label})\n")
    if not patch.changes:
        sys.stdout.write("nothing changed: that version keeps every original prompt\n")
    return 0
