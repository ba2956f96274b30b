"""mypy reports no error in the three integration packages (issue 15, item 3).

Runs mypy in a child process from the repository root, so ``pyproject.toml``'s ``[tool.mypy]``
settings apply and this worktree's packages (not an installed copy) are the ones checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = (
    "integrations/langchain/tg_bridge_langchain",
    "integrations/llamaindex/tg_bridge_llamaindex",
    "integrations/mlflow/tg_bridge_mlflow",
)


def test_integrations_are_mypy_clean() -> None:
    paths = [str(ROOT)] + [str(ROOT / "integrations" / name) for name in ("langchain", "llamaindex", "mlflow")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *PACKAGES],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
