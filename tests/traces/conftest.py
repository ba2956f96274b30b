"""Fixtures of the trace reader tests."""

from __future__ import annotations

import pytest

from tg_bridge.traces import otlp_json


@pytest.fixture(params=["c", "python"])
def both_converters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C conversion of canonical spans, then with the pure-Python one
    (what an install without a C compiler uses): both must read every file the same."""
    if request.param == "python":
        monkeypatch.setattr(otlp_json, "_fast", None)
    elif otlp_json._fast is None:
        pytest.skip("the C accelerator is not built here")
    return str(request.param)
