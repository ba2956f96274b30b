"""Progress: bars for the baseline and final evaluations (one tick per example), no
ipywidgets warning in a notebook without ipywidgets, never an exception into a run."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import tqdm.notebook
import tqdm.std

from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge.loop import optimize
from tg_bridge.progress import Progress, bar_class, in_notebook
from tg_bridge.testing import FakeApp

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


@pytest.fixture
def fake_kernel(monkeypatch):
    """Looks like a Jupyter kernel to tqdm and to us: IPython and ipykernel's shell loaded.
    tqdm.auto is dropped from the import cache so importing it runs its checks again."""
    shell = type("ZMQInteractiveShell", (), {"config": {"IPKernelApp": {}}})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    monkeypatch.delenv("QT_API", raising=False)
    for name in ("tqdm.auto", "tqdm.autonotebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    monkeypatch.setattr(tqdm.notebook, "IProgress", None)  # as without ipywidgets


def test_notebook_without_ipywidgets_gets_the_text_bar_silently(fake_kernel, capsys):
    assert in_notebook()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Progress(3, desc="baseline", unit="example") as bar:
            bar.advance()
            bar.advance()
            assert type(bar._bar) is tqdm.std.tqdm
    assert caught == []  # no "IProgress not found / ipywidgets" warning
    assert "2/3" in capsys.readouterr().err


# tqdm's own __del__ of the half-built widget bar reports an AttributeError as unraisable
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_broken_widget_stack_falls_back_to_the_text_bar(fake_kernel, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(tqdm.notebook, "IProgress", object)  # a widget class that cannot start
    assert bar_class() is tqdm.notebook.tqdm
    bar = Progress(2, desc="x")
    assert type(bar._bar) is tqdm.std.tqdm
    bar.close()


def test_outside_a_kernel_the_text_bar_is_used(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel.zmqshell", raising=False)
    assert not in_notebook() and bar_class() is tqdm.std.tqdm


def test_qt_console_is_not_a_notebook(fake_kernel, monkeypatch):
    monkeypatch.setenv("QT_API", "pyqt5")
    assert not in_notebook()


class _Exploding:
    def __getattr__(self, name):
        raise RuntimeError(f"display broke in {name}")


class _ClosedStream:
    def write(self, _text):
        raise OSError("stream closed")

    def flush(self):
        raise OSError("stream closed")


def test_progress_never_raises(monkeypatch):
    bar = Progress(5)
    bar._bar = _Exploding()
    bar.add_usage({"forward": {"calls": 2, "prompt_tokens": 3}})
    bar.advance(failed=1)
    bar.update(1, 0.5)
    bar.close()
    monkeypatch.setattr(sys, "stderr", _ClosedStream())
    with Progress(5, desc="closed stream") as other:
        other.advance()
        other.update(2, None)
    assert Progress(5, enabled=False)._bar is None


def test_baseline_and_final_evaluations_show_example_bars(tmp_path, capsys, fake_app_adapter):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = optimize(app, TRAIN, metric=metric, engine=engine, batch_size=4,
                      store=tmp_path / "runs.db")
    assert result.accepted_steps == [1]
    err = capsys.readouterr().err
    lines = [line for chunk in err.split("\n") for line in chunk.split("\r") if line.strip()]
    baseline = [line for line in lines if line.startswith("baseline")]
    final = [line for line in lines if line.startswith("final check")]
    assert baseline and "4/4" in baseline[-1] and "example" in baseline[-1]
    # the step's check already scored the kept prompts on the whole trainset (batch 4 of 4):
    # the final check reuses those runs, makes no call and shows no empty bar
    assert final == []
    assert any(line.startswith("tg_bridge optimize") and "1/1" in line for line in lines)


def test_baseline_bar_counts_failed_examples(tmp_path, capsys, fake_app_adapter):
    def model(prompt: str) -> str:
        if prompt.endswith(("fig", "kiwi")):
            raise RuntimeError("model down")
        return polite_model(prompt)

    app = FakeApp("Answer {q}", model)
    optimize(app, TRAIN, metric=metric, engine=improving_engine(lambda old: "Answer {q}"),
             batch_size=4, store=tmp_path / "runs.db")
    err = capsys.readouterr().err
    baseline = [line for chunk in err.split("\n") for line in chunk.split("\r")
                if line.startswith("baseline")]
    assert "4/4" in baseline[-1] and "failed=2" in baseline[-1]


def test_no_bars_when_progress_is_off(tmp_path, capsys, fake_app_adapter):
    app = FakeApp("Answer {q}", polite_model)
    optimize(app, TRAIN, metric=metric, engine=improving_engine(lambda old: "Please answer {q}"),
             batch_size=4, store=tmp_path / "runs.db", progress=False)
    err = capsys.readouterr().err
    assert "baseline" not in err and "final check" not in err
