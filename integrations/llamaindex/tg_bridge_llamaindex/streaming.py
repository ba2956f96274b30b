"""Streaming results: detect them, and wrap a StreamingResponse's token generator.

The wrapper is transparent (same items, same exceptions, same close behaviour). While it pulls
each token it sets LlamaIndex's ``active_span_id`` to the span that produced the generator, so
the LLM spans started lazily by the stream get their real parent instead of none; when the
stream is exhausted or closed it ends the deferred chain with the streamed text.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.instrumentation.span import active_span_id

from .hooks import record_hook_error

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["is_stream", "wrap_stream"]


def is_stream(result: Any) -> bool:
    """True for results whose content arrives after the call returns."""
    return (
        inspect.isgenerator(result)
        or inspect.isasyncgen(result)
        or isinstance(result, (StreamingResponse, AsyncStreamingResponse))
    )


def wrap_stream(response: Any, span_id: str, recorder: Recorder) -> None:
    """Replace ``response.response_gen`` by a recording wrapper (once per response)."""
    try:
        gen = response.response_gen
        code = getattr(gen, "gi_code", None) or getattr(gen, "ag_code", None)
        if code in (_sync_wrapper.__code__, _async_wrapper.__code__):
            return  # an outer span of the same chain already wrapped it
        producer = recorder.producer_of(gen, span_id)
        if inspect.isgenerator(gen):
            response.response_gen = _sync_wrapper(gen, producer, recorder)
        elif inspect.isasyncgen(gen):
            response.response_gen = _async_wrapper(gen, producer, recorder)
        else:
            recorder.finish_chain(producer, None)
    except Exception as exc:
        record_hook_error(exc)


def _sync_wrapper(gen: Generator[Any, Any, Any], producer: str, recorder: Recorder) -> Generator[Any, None, None]:
    parts: list[str] = []
    try:
        while True:
            token = active_span_id.set(producer)
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                active_span_id.reset(token)
            if isinstance(item, str):
                parts.append(item)
            yield item
    finally:
        gen.close()
        recorder.finish_chain(producer, "".join(parts))


async def _async_wrapper(gen: AsyncGenerator[Any, Any], producer: str, recorder: Recorder) -> AsyncGenerator[Any, None]:
    parts: list[str] = []
    try:
        while True:
            token = active_span_id.set(producer)
            try:
                item = await gen.__anext__()
            except StopAsyncIteration:
                return
            finally:
                active_span_id.reset(token)
            if isinstance(item, str):
                parts.append(item)
            yield item
    finally:
        await gen.aclose()
        recorder.finish_chain(producer, "".join(parts))
