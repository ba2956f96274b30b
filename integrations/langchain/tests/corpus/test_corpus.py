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
