"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (the venv's python),
on scripted FakeEngines (``TG_BRIDGE_NOTEBOOK_ENGINE=fake``), and is committed with cleared
outputs."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("llama_index.core")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def ensure_kernelspec() -> str:
    """The ``python3`` kernel of this interpreter; installed into the venv when a clean venv
    has none (jupyter_client then starts it with sys.executable)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
                       check=True, capture_output=True, timeout=60)
    return "python3"


def test_notebook_is_committed_with_cleared_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_quickstart_notebook_runs_on_fake_engines(monkeypatch):
    monkeypatch.setenv("TG_BRIDGE_NOTEBOOK_ENGINE", "fake")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    run = copy.deepcopy(nb)
    # first, prove which interpreter the kernel is
    run.cells.insert(0, nbformat.v4.new_code_cell("import sys; print('PREFIX=' + sys.prefix)"))
    client = nbclient.NotebookClient(
        run, timeout=60, kernel_name=ensure_kernelspec(),
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    texts, html = [], []
    for cell in run.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                texts.append(out.data.get("text/plain", ""))
                html.append(out.data.get("text/html", ""))
    text = "\n".join(texts)
    assert f"PREFIX={sys.prefix}" in text
    assert "'fake'" in text
    # the captured run and its graph render as HTML; the template is the one parameter
    assert "<Run 'first question'" in text and "1 parameters" in text
    assert any(h for h in html) and "response_synthesizer:text_qa_template" in text
    # backward reached the template; the patch was applied and reverted byte for byte
    assert "should ask to quote" in text
    assert "reverted; byte for byte the original: True" in text
    # optimize: the new template reached the live app, so the score went up
    assert "score 0 -> 1" in text
    assert "+Answer by quoting the sentence" in text
    assert any("tg-bridge-result" in h for h in html)
