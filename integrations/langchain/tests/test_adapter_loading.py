"""A LangChain app loads only the LangChain adapter (issue 12 item 8): optimizing it must not
import llama_index (2.3 s on a cold start). Checked in a fresh interpreter via sys.modules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent('''
    import sys
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    import tg_bridge
    from tg_bridge.testing import FakeEngine

    prompt = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{q}")])
    chain = prompt | FakeListChatModel(responses=["fine"] * 50) | StrOutputParser()

    def respond(messages, response_format):
        if "improved_value" in str(response_format):
            return {"improved_value": "Be very terse."}
        return "Shorter please."

    result = tg_bridge.optimize(
        chain, [({"q": "hi"}, "fine")], metric=lambda ex, out: float(out == ex.expected),
        backward_engine=FakeEngine(respond), progress=False, store=":memory:")
    assert result.baseline_score == 1.0, result
    print("llama_index" in sys.modules, "tg_bridge_llamaindex" in sys.modules,
          sorted(tg_bridge.capturing.instrumented()))
    import llama_index.core  # imported later: the next capture instruments it too
    with tg_bridge.capture():
        pass
    print(sorted(tg_bridge.capturing.instrumented()))
''')


def test_langchain_app_does_not_import_llama_index():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "integrations/langchain"), str(ROOT / "integrations/llamaindex")]
    )
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=300)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first == "False False ['langchain']"
    assert second == "['langchain', 'llamaindex']"
