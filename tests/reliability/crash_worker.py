"""``python crash_worker.py STORE KILL_AT [RUN_ID]``: tests/loop/resume_worker.py's deterministic
run that SIGKILLs itself at a chosen point.

The fault-injection hook counts *events* in this process: every engine call and every write the
run store makes (run creation, step commit, usage, finish). When the count reaches ``KILL_AT`` the
process kills itself with SIGKILL before the event happens, so the kill lands exactly there, on
any machine, however busy. ``KILL_AT`` 0 (or a count past the end) means: never kill.
``KILL_AT`` may also name the event, ``NAME:N`` (a store write such as ``commit_step``, or
``engine``): the kill lands right before the N-th event of that name, e.g. ``commit_step:3``
dies in step 3 after its engine calls, with exactly two steps committed.
"""

from __future__ import annotations

import os
import signal
import sys

import tg_bridge.adapters
from tests.loop import resume_worker
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeAppAdapter

STORE_WRITES = ("create_run", "update_run", "commit_step", "add_usage", "finish_run")


class KillSwitch:
    """Counts events; SIGKILLs the process when the ``kill_at``-th one is about to happen
    (the ``kill_at``-th event named ``only``, when ``only`` is given)."""

    def __init__(self, kill_at: int, only: str | None = None) -> None:
        self.kill_at = kill_at
        self.only = only
        self.count = 0
        self.matching = 0

    def tick(self, name: str = "") -> None:
        self.count += 1
        if self.only is None:
            due = self.count == self.kill_at
        else:
            self.matching += name == self.only
            due = name == self.only and self.matching == self.kill_at
        if due:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def parse_kill_at(spec: str) -> KillSwitch:
    """``N`` or ``NAME:N`` (see the module docstring)."""
    name, _, count = spec.rpartition(":")
    if name and name not in (*STORE_WRITES, "engine"):
        raise SystemExit(f"unknown event {name!r}: use one of {STORE_WRITES} or 'engine'")
    return KillSwitch(int(count), name or None)


def install(switch: KillSwitch) -> None:
    """Wrap the store's writes and the fake engine's answers with ``switch.tick``."""
    for name in STORE_WRITES:
        original = getattr(RunStore, name)

        def wrapped(self, *args, __original=original, __name=name, **kwargs):
            switch.tick(__name)
            return __original(self, *args, **kwargs)

        setattr(RunStore, name, wrapped)
    respond = resume_worker.respond

    def counted(messages, response_format):
        switch.tick("engine")
        return respond(messages, response_format)

    resume_worker.respond = counted


if __name__ == "__main__":
    tg_bridge.adapters.load_adapters = lambda: [FakeAppAdapter()]  # this process only
    switch = parse_kill_at(sys.argv[2])
    install(switch)
    result = resume_worker.run(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None)
    print(result.run_id, result.best_score, switch.count)
