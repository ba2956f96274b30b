"""Run untrusted Python in a separate, resource-limited process (never in ours).

:func:`arun_sandboxed` starts ``python -I -B SCRIPT ARGS`` in a fresh temporary directory with:

- a stripped environment (no API keys, no PYTHONPATH; ``HOME`` is the temp directory),
- ``resource.setrlimit`` in ``preexec_fn``: CPU seconds, address space, file size, no core
  dumps, and a process cap (enforced for non-root users only, as the kernel does),
- its own session (process group), killed as a whole when the run ends or times out, so
  ``os.system("sleep 1000 &")`` leaves nothing behind,
- stdout/stderr captured and truncated to ``max_output`` characters (read incrementally, so an
  output flood costs no memory),
- a wall-clock timeout.

This is protection against accidents of generated code (infinite loops, memory bombs, stray
writes), not a security boundary against a determined attacker: the child still runs as our
user and can read what we can read. Linux/POSIX only (``resource`` and sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence

from ..exceptions import UsageError

__all__ = ["Limits", "SandboxResult", "arun_sandboxed"]

log = logging.getLogger(__name__)

_SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}
_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed process.

    ``cpu_seconds``: RLIMIT_CPU (the kernel kills the process after it); ``memory_mb``:
    RLIMIT_AS, the address-space cap (a memory bomb gets MemoryError); ``file_size_mb``:
    RLIMIT_FSIZE, the largest file it may write; ``max_processes``: RLIMIT_NPROC (ignored by
    the kernel for root); ``max_output``: characters kept of stdout and of stderr each.
    """

    cpu_seconds: float = 10.0
    memory_mb: int = 512
    file_size_mb: int = 8
    max_processes: int = 16
    max_output: int = 4000

    def preexec(self) -> Callable[[], None]:
        """The function run in the child between fork and exec (async-signal-simple calls only)."""
        import resource

        cpu = max(1, math.ceil(self.cpu_seconds))
        memory = int(self.memory_mb) * 1024 * 1024
        fsize = int(self.file_size_mb) * 1024 * 1024
        nproc = int(self.max_processes)

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        return apply


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run left behind.

    ``returncode`` is negative for a signal (``-9`` = killed); ``timed_out`` is True when we
    killed it at the wall-clock limit; ``files`` maps the names asked for in
    ``collect`` to their text (missing files are absent); ``*_dropped`` count the bytes cut.
    """

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    stdout_dropped: int
    stderr_dropped: int
    duration: float
    files: Mapping[str, str]

    @property
    def signal_name(self) -> str:
        """``SIGKILL``, ``SIGXCPU``, ... when a signal ended the process, else ``""``."""
        if self.returncode is None or self.returncode >= 0:
            return ""
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


async def arun_sandboxed(
    script: str,
    args: Sequence[str] = (),
    *,
    files: Mapping[str, str] | None = None,
    collect: Sequence[str] = (),
    timeout: float = 10.0,
    limits: Limits | None = None,
) -> SandboxResult:
    """Run the Python file ``script`` (a path, copied into the temp dir) in a sandbox.

    ``files`` are written into the temp directory first (name -> text); ``args`` are passed
    after the script (relative names resolve inside the temp dir); ``collect`` names files to
    read back afterwards. Never raises for anything the child does; raises
    :class:`~tg_bridge.exceptions.UsageError` for a bad ``timeout`` or a missing script.
    The temp directory is removed afterwards. Safe to run concurrently.
    """
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError("timeout must be a positive number of seconds")
    if not os.path.isfile(script):
        raise UsageError(f"sandbox script not found: {script}")
    limits = limits or Limits(cpu_seconds=timeout + 1)
    workdir = tempfile.mkdtemp(prefix="tg_bridge_sandbox_")
    try:
        target = os.path.join(workdir, os.path.basename(script))
        shutil.copyfile(script, target)
        for name, text in (files or {}).items():
            _write_inside(workdir, name, text)
        env = {**_SAFE_ENV, "HOME": workdir, "TMPDIR": workdir}
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-B", target, *args,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=limits.preexec(),
            start_new_session=True,
        )
        readers = asyncio.gather(
            _read_capped(proc.stdout, limits.max_output), _read_capped(proc.stderr, limits.max_output)
        )
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        try:
            (out, out_drop), (err, err_drop) = await asyncio.wait_for(readers, 5.0)
        except asyncio.TimeoutError:  # a detached grandchild kept a pipe open
            readers.cancel()
            (out, out_drop), (err, err_drop) = ("", 0), ("", 0)
        duration = time.perf_counter() - started
        collected = {}
        for name in collect:
            path = os.path.join(workdir, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    collected[name] = fh.read()
        return SandboxResult(
            returncode=proc.returncode,
            timed_out=timed_out,
            stdout=out,
            stderr=err,
            stdout_dropped=out_drop,
            stderr_dropped=err_drop,
            duration=duration,
            files=collected,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _write_inside(workdir: str, name: str, text: str) -> None:
    path = os.path.normpath(os.path.join(workdir, name))
    if os.path.dirname(path) != os.path.normpath(workdir):
        raise UsageError(f"sandbox file names must be plain names, got {name!r}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _kill_group(pgid: int) -> None:
    # the child leads its own session; its pgid cannot be reused while any member lives
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _read_capped(stream: asyncio.StreamReader | None, limit: int) -> tuple[str, int]:
    """Read ``stream`` to EOF, keeping the first ``limit`` characters; returns (text, dropped)."""
    if stream is None:
        return "", 0
    kept = bytearray()
    dropped = 0
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            break
        room = max(0, limit * 4 - len(kept))  # bytes; trimmed to characters below
        kept.extend(chunk[:room])
        dropped += max(0, len(chunk) - room)
    text = kept.decode("utf-8", errors="replace")
    if len(text) > limit:
        dropped += len(text[limit:].encode("utf-8"))
        text = text[:limit]
    return text, dropped
