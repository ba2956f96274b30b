"""CaptureWriter alone: order, bounded queue, failures, flush and close. A fake ``write``
blocks on an Event, so every interleaving asserted here is forced, not timed."""

from __future__ import annotations

import threading

import pytest

from tg_bridge.exceptions import UsageError
from tg_bridge.store.writer import CaptureWriter


class GatedSink:
    """Stores records once ``gate`` is set; ``entered`` is set when a write is waiting."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.records: list[dict] = []

    def __call__(self, record: dict) -> None:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        if record.get("fail"):
            raise RuntimeError("store down")
        self.records.append(record)


def test_records_are_written_in_order_after_the_sink_frees_up():
    sink = GatedSink()
    writer = CaptureWriter(sink, max_pending=10)
    for i in range(5):
        assert writer.submit({"i": i})
    assert sink.entered.wait(60)
    assert writer.flush(timeout=0) is False and writer.pending == 5  # nothing written yet
    sink.gate.set()
    assert writer.flush(60)
    assert [r["i"] for r in sink.records] == [0, 1, 2, 3, 4]
    assert (writer.submitted, writer.written, writer.dropped, writer.failed) == (5, 5, 0, 0)


def test_a_full_queue_drops_and_counts_without_waiting():
    sink = GatedSink()
    writer = CaptureWriter(sink, max_pending=3)
    assert writer.submit({"i": 0})
    assert sink.entered.wait(60)  # record 0 is in the writer's hands: 3 more fit in the queue
    accepted = [writer.submit({"i": i}) for i in range(1, 8)]
    assert accepted == [True, True, True, False, False, False, False]
    assert writer.dropped == 4
    sink.gate.set()
    assert writer.flush(60)
    assert [r["i"] for r in sink.records] == [0, 1, 2, 3]


def test_a_failing_write_is_counted_and_the_next_record_still_goes_through():
    sink = GatedSink()
    sink.gate.set()
    writer = CaptureWriter(sink)
    writer.submit({"fail": True})
    writer.submit({"i": 1})
    assert writer.flush(60)
    assert writer.failed == 1 and writer.written == 1 and sink.records == [{"i": 1}]


def test_close_writes_what_is_pending_then_refuses_new_records():
    sink = GatedSink()
    writer = CaptureWriter(sink)
    writer.submit({"i": 0})
    assert sink.entered.wait(60)
    assert writer.close(timeout=0) is False  # bounded: does not wait for the blocked sink
    assert writer.submit({"i": 1}) is False and writer.dropped == 1
    sink.gate.set()
    assert writer.close(60) is True  # idempotent; the pending record was written
    assert sink.records == [{"i": 0}]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_max_pending_must_be_a_positive_integer(bad):
    with pytest.raises(UsageError):
        CaptureWriter(lambda r: None, max_pending=bad)
