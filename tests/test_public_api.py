"""The public surface: every exported name resolves, __all__ is sorted and complete, and
each public module's names are reachable from the package where DESIGN says they are."""

from __future__ import annotations

import subprocess
import sys

import tg_bridge


def test_every_exported_name_resolves_and_all_is_sorted():
    assert list(tg_bridge.__all__) == sorted(tg_bridge.__all__)
    for name in tg_bridge.__all__:
        assert getattr(tg_bridge, name) is not None, name


def test_the_documented_entry_points_are_exported():
    documented = {
        "Variable", "Graph", "TextLoss", "MetricLoss", "feedback", "backward", "abackward",
        "TGD", "TextualGradientDescent", "Patch", "Change", "engine", "configure", "context",
        "usage", "capture", "instrument", "uninstrument", "reconstruct", "load_traces",
        "optimize", "optimizable", "apply_patch", "refine", "TgBridgeError",
    }
    assert documented <= set(tg_bridge.__all__)


def test_every_error_class_and_warning_is_exported():
    import inspect

    from tg_bridge import exceptions

    defined = {name for name, obj in vars(exceptions).items()
               if inspect.isclass(obj) and issubclass(obj, (exceptions.TgBridgeError,
                                                            exceptions.TgBridgeWarning))}
    assert defined <= set(tg_bridge.__all__), sorted(defined - set(tg_bridge.__all__))
    for name in defined:
        assert getattr(tg_bridge, name) is getattr(exceptions, name)


def test_async_twins_are_exported():
    assert {"aoptimize", "abackward", "arefine"} <= set(tg_bridge.__all__)


def test_unknown_names_raise_attribute_error():
    try:
        tg_bridge.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_functions_keep_their_names_after_their_modules_are_imported():
    code = (
        "import tg_bridge, tg_bridge.refinement, tg_bridge.capturing, tg_bridge.reconstruction;"
        "import tg_bridge.traces; tg_bridge.load_traces;"
        "from tg_bridge.refinement import refine;"
        "from types import FunctionType as F;"
        "assert tg_bridge.refine is refine;"
        "assert isinstance(tg_bridge.capture, F) and isinstance(tg_bridge.reconstruct, F)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sync_optimize_mirrors_aoptimize():
    import inspect

    sync, async_ = inspect.signature(tg_bridge.optimize), inspect.signature(tg_bridge.aoptimize)
    assert list(sync.parameters.values()) == list(async_.parameters.values())
    assert tg_bridge.optimize.__name__ == "optimize" and not inspect.iscoroutinefunction(tg_bridge.optimize)
