"""Load the scripts under examples/ as modules for tests (they are scripts, not a package),
and the scripted models the LlamaIndex query-engine examples' tests share."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tg_bridge.testing import FakeEngine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, path: Path | None = None) -> ModuleType:
    """The example module ``name`` (examples/<name>.py unless ``path``), loaded once and
    registered in sys.modules, so examples that import each other share one module object."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path or EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no example {name!r}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: The instruction the scripted optimizer adds to a QA template, and the scripted app obeys.
QUOTE = "Answer by quoting the sentence of the context that answers the question."


def quoting_app(messages: list[dict[str, str]]) -> str:
    """The app's LLM (for FakeEngine): it quotes the retrieved context only when the live
    template carries :data:`QUOTE`, else it answers "I do not know."."""
    prompt = messages[-1]["content"]
    if QUOTE in prompt and "Context:\n" in prompt:
        return prompt.split("Context:\n", 1)[1].split("\n\nQuestion:", 1)[0]
    return "I do not know."


def quote_optimizer(template: str, updates: list[str], critique: str) -> FakeEngine:
    """The optimizer: ``critique`` as every gradient; each update call (its prompt appended
    to ``updates``) proposes :data:`QUOTE` on a line above ``template``."""

    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            updates.append(messages[-1]["content"])
            return {"improved_value": f"{QUOTE}\n{template}"}
        return critique

    return FakeEngine(respond)
