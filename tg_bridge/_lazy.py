"""Lazy re-exports for packages: public names resolve on first access to their module.

Keeps ``import tg_bridge`` (and its subpackages) free of heavy imports and side effects
while the public names stay reachable from the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to the
    (relative) module defining it; the value is cached in ``namespace`` (the package's
    globals) so later lookups are plain attribute reads. Unknown names raise AttributeError."""

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name, package), name)
        namespace[name] = value
        return value

    return __getattr__
