"""The whole error and warning tree of tg_bridge.

Every error raised by a call the user makes explicitly is a :class:`TgBridgeError`.
Code on the host app's request path (callbacks, span processors, the decorator) never
raises: it logs on the ``tg_bridge`` logger and counts the failure on the Run.

::

    TgBridgeError
    ├── UsageError                  the caller passed something we cannot use (also ValueError)
    │   ├── ConfigurationError      bad settings / engine spec
    │   ├── MissingExtraError       an optional dependency is missing (also ImportError)
    │   ├── TraceFormatError        a trace file cannot be read (names file and place)
    │   └── TraceSourceError        a trace server (Phoenix) cannot be read (names the URL)
    ├── EngineError                 an LLM call failed (engine id, status, retryable, raw body)
    │   └── EngineTimeoutError      the call did not answer within the timeout
    │       └── EngineDeadlineError the overall deadline (retries included) ran out
    ├── GraphError                  a graph cannot be differentiated (cycle, no loss, ...)
    ├── OptimizerOutputError        the optimizer's answer could not be parsed (raw kept)
    ├── PatchError
    │   ├── PatchValidationError    a proposed value would break the host (placeholders, copy guard)
    │   ├── PatchConflictError      the live value no longer matches the patch's old value
    │   └── BindingError            a patch target cannot be found on the live app
    ├── CaptureError                capture misuse by the caller (never raised inside the host)
    └── StoreError                  the run store is unusable or a resume is impossible

    TgBridgeWarning (UserWarning)
    ├── DisconnectedParameterWarning   a trainable parameter cannot reach the loss
    ├── DroppedDataWarning             capture dropped spans/attributes to stay bounded
    └── UnwritablePromptWarning        a prompt of the app cannot be written (named)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BindingError",
    "CaptureError",
    "ConfigurationError",
    "DisconnectedParameterWarning",
    "DroppedDataWarning",
    "EngineDeadlineError",
    "EngineError",
    "EngineTimeoutError",
    "GraphError",
    "MissingExtraError",
    "OptimizerOutputError",
    "PatchConflictError",
    "PatchError",
    "PatchValidationError",
    "StoreError",
    "TgBridgeError",
    "TgBridgeWarning",
    "UnwritablePromptWarning",
    "TraceFormatError",
    "TraceSourceError",
    "UsageError",
]


class TgBridgeError(Exception):
    """Base of every error tg_bridge raises on purpose."""


class UsageError(TgBridgeError, ValueError):
    """The caller passed something tg_bridge cannot use."""


class ConfigurationError(UsageError):
    """Settings or an engine specification are invalid."""


class MissingExtraError(UsageError, ImportError):
    """An optional dependency is not installed; the message names the exact pip line."""

    def __init__(self, feature: str, pip_line: str) -> None:
        self.feature = feature
        self.pip_line = pip_line
        super().__init__(f"{feature} needs an optional dependency: run `{pip_line}`")


class TraceFormatError(UsageError):
    """A trace file or span record cannot be read.

    ``path`` and ``where`` (line number, JSON pointer, span id) locate the problem.
    """

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None) -> None:
        self.path = path
        self.where = where
        prefix = ""
        if path:
            prefix = f"{path}"
            if where:
                prefix += f" ({where})"
            prefix += ": "
        elif where:
            prefix = f"{where}: "
        super().__init__(prefix + message)


class TraceSourceError(UsageError):
    """A trace server (Arize Phoenix) cannot be read: unreachable, unknown project, no spans,
    or an answer that is not what its API documents. ``url`` names the server."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(f"{url}: {message}")


class EngineError(TgBridgeError):
    """An LLM call failed after the retries it was allowed.

    Attributes: ``engine_id``, ``status`` (HTTP status or None), ``retryable`` and ``raw``
    (the raw response body or exception text, kept for debugging).
    """

    def __init__(
        self,
        message: str,
        *,
        engine_id: str = "",
        status: int | None = None,
        retryable: bool = False,
        raw: Any = None,
    ) -> None:
        self.engine_id = engine_id
        self.status = status
        self.retryable = retryable
        self.raw = raw
        detail = f"[{engine_id}]" if engine_id else ""
        if status is not None:
            detail += f" status={status}"
        super().__init__(f"{detail} {message}".strip())


class EngineTimeoutError(EngineError):
    """The engine did not answer within the per-call timeout."""


class GraphError(TgBridgeError):
    """The graph cannot be used as asked (a cycle, no path to the loss, ...)."""


class OptimizerOutputError(TgBridgeError):
    """The optimizer's LLM answer could not be parsed, even after the bounded retry."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        self.raw = raw
        super().__init__(message)


class PatchError(TgBridgeError):
    """Base of errors about proposing, validating or applying a patch."""


class PatchValidationError(PatchError):
    """A proposed value would break the host app; nothing was changed.

    ``target`` names the parameter, ``reason`` is a short machine-readable code
    (``placeholders``, ``copy_guard``, ``empty``, ``schema``, ``size``).
    """

    def __init__(self, message: str, *, target: str = "", reason: str = "") -> None:
        self.target = target
        self.reason = reason
        super().__init__(message)


class PatchConflictError(PatchError):
    """The live value no longer matches the value the patch was computed from."""

    def __init__(self, message: str, *, target: str = "") -> None:
        self.target = target
        super().__init__(message)


class BindingError(PatchError):
    """A patch target cannot be found on (or written to) the live app."""


class CaptureError(TgBridgeError):
    """Capture was used wrongly by the caller (raised only from explicit calls)."""


class StoreError(TgBridgeError):
    """The run store cannot be opened, read or written, or a resume is impossible."""


class TgBridgeWarning(UserWarning):
    """Base of tg_bridge's warnings."""


class DisconnectedParameterWarning(TgBridgeWarning):
    """A trainable parameter has no path to the loss: it will receive no gradient."""


class DroppedDataWarning(TgBridgeWarning):
    """Capture dropped spans or attributes to keep memory bounded."""


class EngineDeadlineError(EngineTimeoutError):
    """A call's overall deadline (every attempt and every wait between them) ran out, or the
    server asked to wait longer than allowed (``Retry-After`` above ``max_retry_after``).

    Always ``retryable``: the same call may succeed later. ``attempts`` counts the requests
    made; ``raw["retry_after"]`` keeps the server's wish (seconds) when it sent one.
    """

    def __init__(self, message: str, *, attempts: int = 0, **kwargs: Any) -> None:
        self.attempts = attempts
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)


class UnwritablePromptWarning(TgBridgeWarning):
    """A prompt of the app cannot be bound for writing (e.g. an agent prompt given as a
    function); it is named, and optimization leaves it as it is."""
