"""Optimize from a collector's rotating trace files as they are written (``optimize --follow``).

The traces come from :class:`tg_bridge.traces.follow.TraceFollower`; the feedback from the
``tg_bridge.feedback`` spans inside each trace (:func:`~tg_bridge.traces.feedback_spans.split_feedback`),
turned into the loss exactly like a ``--feedback`` file entry (:func:`tg_bridge.offline.feedback_text`:
end-user text, masked and delimited as data by the loss and backward prompts). The feedback
spans themselves are removed before the graph is rebuilt, so they never add a step or an output.
A trace without feedback is counted and dropped at once; one that cannot be rebuilt is logged,
counted and dropped.

Steps: every ``batch`` traces with feedback, and at a poll that completed no trace while some
are pending (the stream paused: waiting could take hours), and once more when ``max_polls``
ends the run, :func:`tg_bridge.offline.afrom_graphs` runs ONE descent step over the pending
traces, with one parameter pool for the whole run (the same prompt is one parameter).

How steps compose (:class:`StreamPatch`): the patch file always holds ONE cumulative patch per
prompt, from the text seen in production (``old``, what ``apply_patch`` checks against the
live app) to the latest proposal (``new``). Each step's proposal starts from the previous one
(textual gradient descent on a stream), while its gradients come from runs made with the
production text: the outputs being criticised were produced by the OLD prompt. A step that
proposes nothing for a prompt keeps its earlier proposal; a proposal equal to the production
text drops the change. Refused proposals (template rules, copy guard, ...) never enter the
changes; ``metadata["rejected"]`` keeps only their step, target and reason (not the refused
text, which may carry what an end user wrote).

Order of effects, so that a crash loses nothing and never leaves a half state: the patch is
written atomically (:meth:`Patch.save`) after a step, THEN the follower's checkpoint is saved
— and only at the end of a poll with no trace pending, so the checkpoint never gets ahead of
the patch. A crash (or a stop) between the two means the traces since the last checkpoint
are read again and may be used a second time (at-least-once); the patch stays valid.
Blocking; not thread-safe (one run per checkpoint and patch file).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from .engines.sync import run_sync
from .exceptions import PatchValidationError, TgBridgeError, UsageError
from .graph import Graph
from .loop.descent import Mode, pick_output
from .offline import FeedbackOptimization, afrom_graphs, feedback_text
from .patching.patch import Change, Patch
from .spans import SpanRecord
from .variable import Variable, content_hash

__all__ = ["DEFAULT_BATCH", "FollowOptimizer", "StepReport", "StreamPatch", "optimize_follow"]

log = logging.getLogger(__name__)

#: Traces with feedback per step unless told otherwise: small, so proposals come early.
DEFAULT_BATCH = 8
_SOURCE = "follow"  # metadata["source"] of a patch written by a follow run
_MAX_REJECTED = 50  # refusals remembered in the patch (the latest)


@dataclasses.dataclass
class StreamPatch:
    """The cumulative patch of a follow run (see the module): ``changes`` by target, each
    from the production text to the latest proposal, plus counters kept across restarts."""

    source: str
    checkpoint: str | None
    changes: dict[str, Change] = dataclasses.field(default_factory=dict)
    steps: int = 0
    traces_used: int = 0
    rejected: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    usage: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def start_values(self) -> dict[str, str]:
        """Parameter key -> the text the next step's proposal starts from."""
        return {key: change.new for key, change in self.changes.items()}

    def absorb(self, result: FeedbackOptimization) -> int:
        """Fold one step's proposal in; returns how many prompts it changed."""
        self.steps += 1
        self.traces_used += result.used
        for change in result.patch.changes:
            earlier = self.changes.get(change.target)
            old = earlier.old if earlier is not None else change.old  # the production text
            if change.new == old:
                self.changes.pop(change.target, None)
                continue
            provenance = {**change.provenance, "follow_step": self.steps}
            self.changes[change.target] = Change(change.target, "replace", old, change.new, content_hash(old),
                                                 provenance)  # fmt: skip
        for item in result.patch.metadata.get("rejected") or ():
            if isinstance(item, dict):
                self.rejected.append({"step": self.steps, "target": str(item.get("target", "")),
                                      "reason": str(item.get("reason", ""))})  # fmt: skip
        del self.rejected[:-_MAX_REJECTED]
        for phase, counters in result.usage.items():
            total = self.usage.setdefault(phase, {})
            for name, value in counters.items():
                total[name] = total.get(name, 0) + int(value)
        return len(result.patch.changes)

    def to_patch(self) -> Patch:
        """The patch file's content."""
        follow = {"source": self.source, "checkpoint": self.checkpoint, "steps": self.steps,
                  "traces_used": self.traces_used}  # fmt: skip
        return Patch(list(self.changes.values()), {"source": _SOURCE, "follow": follow,
                                                   "rejected": list(self.rejected), "usage": self.usage})  # fmt: skip

    @classmethod
    def resume(cls, out: str | os.PathLike[str], source: str, checkpoint: str | None) -> StreamPatch:
        """The state saved in ``out`` by an earlier run on the same ``source`` and
        ``checkpoint``, or a fresh one when ``out`` does not exist. UsageError (one line)
        for a file that is damaged, not ours, or from another source or checkpoint."""
        path = os.fspath(out)
        source, checkpoint = os.path.abspath(source), _abs(checkpoint)
        if not os.path.exists(path):
            return cls(source, checkpoint)
        try:
            patch = Patch.load(path)
        except PatchValidationError as exc:
            raise UsageError(f"{exc} (cannot continue from it; remove it or give another --out)") from None
        meta = patch.metadata
        follow = meta.get("follow")
        if meta.get("source") != _SOURCE or not isinstance(follow, dict):
            raise UsageError(f"{path} exists and was not written by `tg-bridge optimize --follow`;"
                             " give another --out or remove it")  # fmt: skip
        if checkpoint is None:
            raise UsageError(f"{path} exists: give the --checkpoint of the run that wrote it (without one"
                             " every trace would be used again), or another --out")  # fmt: skip
        if follow.get("source") != source or follow.get("checkpoint") != checkpoint:
            raise UsageError(f"{path} was written following {follow.get('source')!r} with checkpoint "
                             f"{follow.get('checkpoint')!r}; continue with those, or give another --out")  # fmt: skip
        steps, used = follow.get("steps"), follow.get("traces_used")
        rejected, usage = meta.get("rejected", []), meta.get("usage", {})
        if (not _count(steps) or not _count(used) or not isinstance(rejected, list)
                or not all(isinstance(r, dict) for r in rejected) or not _usage_ok(usage)):  # fmt: skip
            raise UsageError(f"{path}: damaged follow patch metadata; remove it or give another --out")
        return cls(source, checkpoint, {c.target: c for c in patch.changes}, steps, used,
                   list(rejected)[-_MAX_REJECTED:], usage)  # fmt: skip


def _abs(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _usage_ok(usage: object) -> bool:
    return isinstance(usage, dict) and all(
        isinstance(c, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in c.values())
        for c in usage.values())  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StepReport:
    """What one step did (for the progress line): ``step`` is the patch's step number."""

    step: int
    traces_read: int  # by this run so far
    with_feedback: int  # by this run so far
    batch: int  # traces with feedback in this step
    used: int  # of those, how many seeded a loss
    proposed: int  # prompts this step changed
    changes: int  # prompts the cumulative patch changes
    calls: int  # engine calls of this step
    note: str = ""  # why the step proposed nothing usable, if so


class FollowOptimizer:
    """The pending traces, the parameter pool and the cumulative patch of one follow run.

    :meth:`add` takes one complete trace; :meth:`step` runs one descent step over the
    pending ones and saves the patch to ``out``. Raises EngineError / OptimizerOutputError
    from the engine (nothing saved for that step).
    """

    def __init__(self, state: StreamPatch, out: str | os.PathLike[str], *, engine: Any, mode: Mode = "edge",
                 constraints: Sequence[str] = (), batch: int = DEFAULT_BATCH,
                 on_step: Callable[[StepReport], None] | None = None) -> None:  # fmt: skip
        if batch < 1:
            raise UsageError("--batch must be at least 1")
        self.state, self.out, self.engine, self.mode = state, os.fspath(out), engine, mode
        self.constraints, self.batch, self.on_step = tuple(constraints), batch, on_step
        self.pool: dict[str, Variable] = {}
        self.pending: list[tuple[Graph, Variable | None, list[str]]] = []
        self.read = self.with_feedback = self.unusable = 0
        self.last: FeedbackOptimization | None = None
        self.last_note = ""

    def add(self, spans: Sequence[SpanRecord]) -> bool:
        """Take one trace; True when a batch is full (call :meth:`step`)."""
        from .reconstruction import reconstruct
        from .traces.feedback_spans import split_feedback

        self.read += 1
        app_spans, found = split_feedback(spans)
        texts = [t for t in (feedback_text(score, text) for score, text in found) if t]
        if not texts:
            return False  # no feedback: dropped at once
        self.with_feedback += 1
        try:
            graph = reconstruct(app_spans, parameters=self.pool)
        except TgBridgeError as exc:
            self.unusable += 1
            log.warning("a trace with feedback cannot be rebuilt (skipped): %s", exc)
            return False
        self.pending.append((graph, pick_output(graph.outputs, graph.metadata.get("output")), texts))
        return len(self.pending) >= self.batch

    def step(self) -> StepReport:
        """One descent step over the pending traces; the patch file is rewritten atomically
        when the cumulative patch has changes (or the file exists already)."""
        items, self.pending = self.pending, []
        note = ""
        try:
            result = run_sync(afrom_graphs(items, engine=self.engine, mode=self.mode, constraints=self.constraints,
                                           parameters=self.pool, start_values=self.state.start_values()))  # fmt: skip
        except UsageError as exc:  # nothing usable in this batch: a stream goes on
            result = FeedbackOptimization(Patch(), {}, 0, len(items), {})
            note = str(exc)
        finally:
            for param in self.pool.values():  # gradients belong to one step
                param.zero_grad()
        self.last, self.last_note = result, note
        proposed = self.state.absorb(result)
        if self.state.changes or os.path.exists(self.out):
            self.state.to_patch().save(self.out)  # atomic, before the checkpoint moves on
        calls = sum(int(u.get("calls", 0)) for u in result.usage.values())
        report = StepReport(self.state.steps, self.read, self.with_feedback, len(items), result.used, proposed,
                            len(self.state.changes), calls, note)  # fmt: skip
        if self.on_step is not None:
            self.on_step(report)
        return report


def optimize_follow(follower: Any, optimizer: FollowOptimizer, *, max_polls: int | None = None,
                    interval: float = 1.0, stop: threading.Event | None = None) -> None:  # fmt: skip
    """Poll ``follower`` (a TraceFollower) and feed ``optimizer`` until ``max_polls`` or
    ``stop``. The checkpoint is saved at the end of a poll that leaves no trace pending
    (after the patch of any step). On ``stop`` the pending traces are abandoned unsaved
    (they are read again next time); at the end of ``max_polls`` they get a last step."""
    from .traces.follow import follow_polls

    stop = stop or threading.Event()
    for traces in follow_polls(follower, max_polls=max_polls, interval=interval, stop=stop):
        completed = 0
        for spans in traces:  # one at a time: a trace without feedback is dropped at once
            if stop.is_set():
                return  # abandon the rest of this poll: the checkpoint stays behind it
            completed += 1
            if optimizer.add(spans):
                optimizer.step()
        if not completed and optimizer.pending and not stop.is_set():
            optimizer.step()  # the stream paused: do not hold feedback for hours
        if not optimizer.pending:
            follower.commit()
        if stop.is_set():
            return
    if optimizer.pending and not stop.is_set():
        optimizer.step()
        follower.commit()
