"""Public test doubles: :class:`FakeEngine` (scripted or computed answers, counts calls).

Use it in your own tests to run backward/optimize without a model::

    engine = FakeEngine(["feedback one", '{"value": "new prompt"}'])
    engine = FakeEngine(lambda messages: "always this")
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .engines.base import BaseEngine, Completion, parsed_or_none
from .exceptions import EngineError
from .testing_app import FakeApp, FakeAppAdapter

__all__ = ["FakeApp", "FakeAppAdapter", "FakeEngine"]

Responder = Callable[[list[dict[str, str]]], Any]


class FakeEngine(BaseEngine):
    """An engine whose answers are scripted (a list, used in order) or computed (a function
    of the messages, or of messages and response_format when it takes two arguments).

    An answer may be a str, a dict/list (sent as JSON text), a Completion, or an Exception
    instance (raised). ``calls`` records every request as ``(messages, response_format,
    params)``. ``delay`` adds latency per call. ``in_flight`` / ``max_in_flight`` count calls
    running at once (to test concurrency without a clock); ``hold_until(n)`` makes every call
    wait until ``n`` calls are in flight at the same time (or until ``hold_timeout``), so a
    test proves "these calls overlap" by counting, not by timing. Token usage is counted as whitespace-separated
    words so accounting tests have real numbers. Running out of scripted answers raises
    :class:`EngineError` (not retryable).
    """

    def __init__(
        self,
        responses: Iterable[Any] | Responder | None = None,
        *,
        id: str = "fake",
        model: str = "fake-model",
        delay: float = 0.0,
        supports_structured: bool = True,
        default: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)
        self.id = id
        self.model = model
        self.delay = delay
        self.supports_structured = supports_structured
        self.default = default
        self._fn: Responder | None = None
        self._script: list[Any] = []
        self._fn_takes_format = False
        if callable(responses):
            self._fn = responses
            self._fn_takes_format = _positional_arity(responses) >= 2
        elif responses is not None:
            self._script = list(responses)
        self.calls: list[tuple[list[dict[str, str]], Any, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._hold: int | None = None
        self.hold_timeout = 30.0
        self._hold_event: asyncio.Event | None = None

    def hold_until(self, n: int | None) -> None:
        """Hold each call until ``n`` calls are in flight at once (``None`` turns it off)."""
        self._hold = n
        self._hold_event = None

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def prompts(self) -> list[str]:
        """Every request rendered as one text (for snapshots)."""
        return [
            "\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
            for messages, _, _ in self.calls
        ]

    async def _call(
        self, messages: list[dict[str, str]], response_format: Any, params: dict[str, Any]
    ) -> Completion:
        self.calls.append((messages, response_format, params))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._wait_for_company()
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        answer = self._next(messages, response_format)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Completion):
            return answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return Completion(
            text=text,
            parsed=parsed_or_none(text, response_format),
            prompt_tokens=sum(len(m["content"].split()) for m in messages),
            completion_tokens=len(text.split()),
            model=self.model,
        )

    async def _wait_for_company(self) -> None:
        # one Event per event loop: released for good once enough calls overlapped
        if self._hold is None:
            return
        if self._hold_event is None:
            self._hold_event = asyncio.Event()
        if self.in_flight >= self._hold:
            self._hold_event.set()
        try:
            await asyncio.wait_for(self._hold_event.wait(), self.hold_timeout)
        except asyncio.TimeoutError:
            pass  # never enough company: the test's max_in_flight assertion reports it

    def _next(self, messages: Sequence[dict[str, str]], response_format: Any) -> Any:
        if self._fn is not None:
            if self._fn_takes_format:
                return self._fn(list(messages), response_format)  # type: ignore[call-arg]
            return self._fn(list(messages))
        if self._script:
            return self._script.pop(0)
        if self.default is not None:
            return self.default
        raise EngineError("FakeEngine ran out of scripted answers", engine_id=self.id)


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
