"""SpanRecord: the framework-free, immutable form of one finished span.

Live capture converts OTel ``ReadableSpan`` objects to SpanRecords; trace files are read into
SpanRecords; :func:`tg_bridge.reconstruct` is a pure function of a sequence of them. A shared
value type at the bottom of the layers: the producers (capturing, traces) and the consumer
(reconstruction) all import it from here, so none of them imports another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["SpanRecord"]


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One span. Ids are lowercase hex strings (trace id 32 chars, span id 16 chars).

    ``attributes`` values are str, bool, int, float or tuples of those (OTel's attribute
    types). ``status`` is ``"UNSET"``, ``"OK"`` or ``"ERROR"``. ``events`` is a tuple of
    ``{"name", "time_ns", "attributes"}`` mappings.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int = 0
    end_ns: int = 0
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    status: str = "UNSET"
    events: tuple[Mapping[str, Any], ...] = ()
    resource: Mapping[str, Any] = dataclasses.field(default_factory=dict)
