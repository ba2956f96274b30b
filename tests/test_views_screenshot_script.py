"""benchmarks/screenshot_views.py keeps working (HTML only: the tests never need Chromium),
and every page it writes is self-contained: no script, nothing fetched."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "screenshot_views.py"


def test_script_writes_self_contained_pages(tmp_path):
    spec = importlib.util.spec_from_file_location("screenshot_views", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--engine", "builtin", "--no-png"]) == 0
    pages = sorted(tmp_path.glob("*.html"))
    assert {p.stem for p in pages} >= {"graph_rag", "graph_agent", "result_50", "result_500"}
    assert not list(tmp_path.glob("*.png"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text and "src=" not in text
        svgs = re.findall(r"<svg.*?</svg>", text, re.DOTALL)
        assert svgs, page.name
        for svg in svgs:
            ET.fromstring(svg)  # each drawing is well-formed XML
