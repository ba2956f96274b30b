"""Shared pieces of the loop tests: a polite-only model, a scripted optimizer engine, a host
that refuses some writes half-way, and the resume worker's reference run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tg_bridge.adapters
from tests.loop import resume_worker
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.patching.validate import placeholders
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeAppAdapter, FakeEngine

WORKER = Path(resume_worker.__file__)
ROOT = WORKER.parents[2]


def polite_model(prompt: str) -> str:
    """Answers well ONLY when the live prompt asks politely."""
    word = prompt.rsplit(" ", 1)[-1]
    if "please" in prompt.lower():
        return f"Certainly! {word.upper()}"
    return word


def metric(example, output):
    ok = output == f"Certainly! {example.expected}"
    return (1.0, "good") if ok else (0.0, "The answer must start with 'Certainly!' and be upper case.")


def improving_engine(new_values, *, delay: float = 0.0) -> FakeEngine:
    """Backward calls get a fixed criticism; each update call gets the next of ``new_values``
    (a callable old_value -> new_value, or a list of those, used in order)."""
    queue = list(new_values) if isinstance(new_values, (list, tuple)) else None

    def respond(messages, response_format):
        props = (response_format or {}).get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            fn = queue.pop(0) if queue is not None else new_values
            old = _current_value(messages[-1]["content"])
            return {"improved_value": fn(old)}
        return "Ask the model politely so that it answers in full."

    return FakeEngine(respond, delay=delay)


def _current_value(prompt: str) -> str:
    # the update prompt shows the current value; the tests' templates all contain "{q}"
    match = re.search(r"^.*\{q\}.*$", prompt, re.MULTILINE)
    return match.group(0).strip() if match else ""


class RefusingApp(FakeApp):
    """A FakeApp whose setters store the text, then refuse one containing BOOM (like a host
    that validates while setting): the write fails after changing the prompt."""

    def bindings(self):
        def refusing(setter):
            def write(value: str) -> None:
                setter(value)
                if "BOOM" in value:
                    raise RuntimeError("the host refused this template")
            return write

        return [CallableBinding(b.key, b.getter, refusing(b.setter), b.template_format)
                for b in super().bindings()]


def trajectory(store: RunStore, run_id: str) -> list[tuple[Any, ...]]:
    """The stored steps of a run, as comparable tuples (step, epoch, batch, kept, score, values)."""
    return [(s.step, s.epoch, s.batch, s.accepted, s.score, dict(s.values))
            for s in store.steps(run_id)]


def reference_run(path: str) -> tuple[Any, list[tuple[Any, ...]]]:
    """The resume worker's scenario run once, uninterrupted, in this process (the fake adapter
    loaded; instrumentation restored after): its result and :func:`trajectory`. Checks that
    the scenario keeps some steps and reverts others, or a resume test would prove little."""
    from tg_bridge.capturing import instrumentation

    before = instrumentation._active
    with pytest.MonkeyPatch.context() as mp:  # module-scope callers: no monkeypatch fixture yet
        mp.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
        result = resume_worker.run(path)
    if instrumentation._active is not before:
        instrumentation.uninstrument()
    traj = trajectory(RunStore(path), result.run_id)
    assert len(traj) == 8 and any(t[3] for t in traj) and not all(t[3] for t in traj)
    return result, traj


def spawn_worker(*args: str, script: Path = WORKER) -> subprocess.Popen:
    """A worker script (default: the resume worker) in a child process run from the repo
    root with ``args``, its output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- end to end on a real adapter and the embedded model ----------------------------------


def capitals(field: str) -> list[tuple[dict[str, str], str]]:
    """Two capital questions asked through the app's input ``field``."""
    return [({field: "What is the capital of France?"}, "Paris"),
            ({field: "What is the capital of Germany?"}, "Berlin")]


def names_the_capital(example, output):
    ok = example.expected.lower() in output.lower()
    return (1.0, "correct") if ok else (0.0, f"The answer should name {example.expected}.")


def check_one_real_step(result) -> None:
    """The one step of an ``optimize()`` run through a real adapter: the adapter captured the
    run (a prompt was found and got feedback), every proposed change keeps exactly the
    template's placeholders, the app's own model calls were metered (the baseline's runs
    are the first forward pass, so they count under "eval"). A kept candidate is reverted,
    so the caller can check the original prompts byte for byte."""
    assert len(result.history) == 1 and result.baseline_score is not None
    step = result.history[0]
    assert not step.reason.startswith(("no run of the batch", "no writable prompt")), step.reason
    assert any(step.gradients.values())
    for change in (step.candidate.changes if step.candidate is not None else ()):
        fmt = change.provenance.get("template_format", "f-string")
        assert set(placeholders(change.old, fmt)) == set(placeholders(change.new, fmt))
    assert result.usage["forward"]["calls"] + result.usage["eval"]["calls"] >= 2
    if step.accepted and step.candidate is not None and step.candidate.changes:
        step.candidate.revert()
