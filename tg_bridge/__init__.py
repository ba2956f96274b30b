"""tg_bridge: TextGrad for the LangChain and LlamaIndex apps you already run.

Importing this package has no side effects: no files, no hooks, no sockets, and no host
framework import. Public names are re-exported lazily from the modules that define them.
"""

from __future__ import annotations

from ._lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    "BindingError": ".exceptions",
    "CaptureError": ".exceptions",
    "Change": ".patching.patch",
    "Completion": ".engines.base",
    "ConfigurationError": ".exceptions",
    "DisconnectedParameterWarning": ".exceptions",
    "DroppedDataWarning": ".exceptions",
    "Engine": ".engines.base",
    "EngineDeadlineError": ".exceptions",
    "EngineError": ".exceptions",
    "EngineTimeoutError": ".exceptions",
    "Example": ".loop",
    "Gradient": ".variable",
    "Graph": ".graph",
    "GraphError": ".exceptions",
    "MetricLoss": ".losses",
    "MissingExtraError": ".exceptions",
    "OptimizationResult": ".loop",
    "OptimizerOutputError": ".exceptions",
    "Patch": ".patching.patch",
    "PatchConflictError": ".exceptions",
    "PatchError": ".exceptions",
    "PatchValidationError": ".exceptions",
    "Refinement": ".refinement",
    "Run": ".reconstruction.live",
    "RunStore": ".store",
    "Settings": ".config",
    "StoreError": ".exceptions",
    "TGD": ".optim.tgd",
    "TextLoss": ".losses",
    "TextualGradientDescent": ".optim.tgd",
    "TgBridgeError": ".exceptions",
    "TgBridgeWarning": ".exceptions",
    "TraceFormatError": ".exceptions",
    "TraceSourceError": ".exceptions",
    "UnwritablePromptWarning": ".exceptions",
    "Usage": ".engines.usage",
    "UsageError": ".exceptions",
    "Variable": ".variable",
    "abackward": ".autograd",
    "aoptimize": ".loop",
    "apply_patch": ".loop.deploy",
    "arefine": ".refinement",
    "backward": ".autograd",
    "capture": ".reconstruction.live",
    "configure": ".config",
    "context": ".config",
    "engine": ".engines",
    "feedback": ".losses",
    "instrument": ".capturing",
    "load_traces": ".reconstruction",
    "optimizable": ".decorators",
    "optimize": ".loop",
    "reconstruct": ".reconstruction",
    "refine": ".refinement",
    "uninstrument": ".capturing",
    "usage": ".engines.usage",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__
