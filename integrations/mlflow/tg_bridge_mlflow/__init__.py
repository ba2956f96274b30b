"""tg_bridge_mlflow: MLflow for tg_bridge.

- :func:`track` logs an optimization run to MLflow Tracking (params, metrics per step,
  patch / diff / gradients / graph artifacts) after the fact, :class:`MlflowTracker` live
  (``optimize(..., callbacks=[MlflowTracker(...)])``);
- :func:`register_prompts` stores the best prompts as new MLflow Prompt Registry versions with
  an alias (default ``tg-candidate``), :func:`patch_from_registry` turns them back into a
  Patch for :func:`tg_bridge.apply_patch`;
- :func:`load_traces` / :func:`read_feedback` / :func:`optimize_traces` read MLflow Tracing
  traces and their feedback assessments (untrusted end-user text) as an optimization source.

Importing this package imports no MLflow module: each function imports it when called.
"""

from __future__ import annotations

from .registry import (
    DEFAULT_ALIAS,
    RegisteredPrompt,
    patch_from_registry,
    register_prompts,
)
from .source import (
    feedback_of_trace,
    fetch_traces,
    load_traces,
    optimize_traces,
    read_feedback,
)
from .spans import records_of_trace
from .templates import from_mlflow, to_mlflow
from .tracking import MlflowTracker, track

__all__ = [
    "DEFAULT_ALIAS",
    "MlflowTracker",
    "RegisteredPrompt",
    "feedback_of_trace",
    "fetch_traces",
    "from_mlflow",
    "load_traces",
    "optimize_traces",
    "patch_from_registry",
    "read_feedback",
    "records_of_trace",
    "register_prompts",
    "to_mlflow",
    "track",
]
