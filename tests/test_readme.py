"""The README's Python quickstarts run as written (with a FakeEngine standing in for the
embedded model, so the test is fast): if the API they show changes, this fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tg_bridge
import tg_bridge.engines
from tg_bridge.testing import FakeEngine

README = Path(__file__).resolve().parents[1] / "README.md"

pytest.importorskip("tg_bridge_langchain")
pytest.importorskip("tg_bridge_llamaindex")


def python_block(section: str) -> str:
    """The first ```python block under the ``## section`` heading of the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None, section
    return match.group(1)


def _respond(messages, fmt):
    props = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
    if "improved_value" in props:
        return {"improved_value": "Answer from the context only, in one short sentence."}
    if "feedback" in props:  # fused backward: one feedback per parameter id
        ids = props["feedback"].get("properties", {})
        return {"feedback": {k: "Ask for one short sentence." for k in ids}}
    return "Lumen was founded in Tampere."


@pytest.fixture
def fake_local(monkeypatch):
    """Every engine spec (``"local"`` in the README) resolves to one FakeEngine."""
    engine = FakeEngine(_respond)
    real = tg_bridge.engines.engine
    monkeypatch.setattr(tg_bridge.engines, "engine",
                        lambda spec=None, **kw: engine if isinstance(spec, (str, type(None))) else real(spec, **kw))
    tg_bridge.configure(engine=engine)
    return engine


def test_langchain_quickstart_and_autograd_by_hand(fake_local, capsys):
    namespace: dict = {}
    exec(python_block("Quickstart: LangChain"), namespace)  # noqa: S102 (our own README)
    assert namespace["result"].baseline_score == 1.0
    live = namespace["prompt"].messages[0].prompt
    assert live.template == "Answer from the context only, in one short sentence."  # in place
    live.template = "Answer from the context only."  # start the second block from the original
    exec(python_block("Capture, graphs and autograd by hand"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "Parameters:" in out and "+Answer from the context only, in one short sentence." in out
    # the block applies then reverts: the live prompt is back to what it was
    assert live.template == "Answer from the context only."


def test_llamaindex_quickstart(fake_local):
    namespace: dict = {}
    exec(python_block("Quickstart: LlamaIndex"), namespace)  # noqa: S102
    assert namespace["result"].baseline_score == 1.0


def test_decorator_block(fake_local, tmp_path, monkeypatch):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from tg_bridge_langchain import EngineChatModel

    monkeypatch.chdir(tmp_path)  # the default run store lives in ./.tg_bridge/
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from the context only."),
                                               ("human", "{question}")])
    namespace: dict = {"tg_bridge": tg_bridge,
                       "rag_chain": prompt | EngineChatModel(engine="local") | StrOutputParser()}
    exec(python_block("The drop-in decorator and user feedback"), namespace)  # noqa: S102
    assert namespace["run_id"] and (tmp_path / ".tg_bridge" / "runs.db").exists()
    assert prompt.messages[0].prompt.template == "Answer from the context only, in one short sentence."


def python_blocks(section: str) -> list[str]:
    """Every ```python block under the ``## section`` heading (up to the next heading)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_save_review_apply_in_another_process_revert(fake_local, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    save_block, deploy_block = python_blocks("Save, review, apply elsewhere, revert")
    namespace: dict = {}
    exec(python_block("Quickstart: LangChain"), namespace)  # noqa: S102
    exec(save_block, namespace)  # noqa: S102
    assert (tmp_path / "result.json").exists() and (tmp_path / "patch.json").exists()
    assert str(namespace["review"]) == str(namespace["result"])
    (tmp_path / "deploy.py").write_text(deploy_block, encoding="utf-8")
    done = subprocess.run([sys.executable, "deploy.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "live: Answer from the context only, in one short sentence.",
        "reverted: Answer from the context only.",
    ]
