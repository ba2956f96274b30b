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
    params)``. ``delay`` adds latency per call. Token usage is counted as whitespace-separated
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
        if self.delay:
            await asyncio.sleep(self.delay)
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
