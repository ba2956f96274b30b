"""Load the scripts under examples/ as modules for tests (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
