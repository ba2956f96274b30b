"""Issue 12 on apps written the way the tutorials write them, with the real ChatOpenAI
pointed at a loopback OpenAI-compatible stub (see harness.check_app for every check)."""

from __future__ import annotations

import pytest

from tests.support.openai_stub import OpenAIStub

from . import app_chatbot, app_create_agent, app_rag, app_react_agent, app_stategraph, app_streaming
from .harness import check_app, respond

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

APPS = [app_rag, app_chatbot, app_create_agent, app_react_agent, app_stategraph, app_streaming]


@pytest.mark.parametrize("module", APPS, ids=lambda m: m.SPEC.name)
def test_corpus_app(module, tmp_path):
    # one stub per app: langchain-openai caches its async HTTP client per base URL, bound to
    # the event loop of its first use
    with OpenAIStub(respond) as stub:
        check_app(module.SPEC, stub, str(tmp_path / "runs.db"))


@pytest.mark.parametrize("module", APPS, ids=lambda m: m.SPEC.name)
def test_corpus_copy_is_independent(module):
    """optimize(in_place=False) works on a copy: writing the copy's prompt never reaches the
    original app, and the copy sends the new text."""
    from tg_bridge_langchain import adapter

    from .harness import INSTRUCTION, chat_model, live_texts

    spec = module.SPEC
    with OpenAIStub(respond) as stub:
        app = spec.build(chat_model(stub))
        originals = live_texts(app)
        duplicate = adapter.copy(app)
        [target] = [b for b in adapter.bindings(duplicate) if b.read() == spec.target]
        target.write(f"{spec.target} {INSTRUCTION}")
        assert spec.run(duplicate, "copy?").endswith("DONE")
        assert live_texts(app) == originals
        assert not spec.run(app, "original?").endswith("DONE")
