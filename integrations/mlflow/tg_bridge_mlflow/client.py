"""One place that talks to an MLflow server: the client, and MLflow's errors as ours.

No global MLflow state is touched (no ``mlflow.set_tracking_uri``): every call goes through
an explicit :class:`mlflow.MlflowClient` for the given tracking URI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tg_bridge.exceptions import StoreError, UsageError

__all__ = ["mlflow_client", "mlflow_errors"]


def mlflow_client(tracking_uri: str | None = None, client: Any = None) -> Any:
    """``client`` when given, else an MlflowClient for ``tracking_uri`` (tracking and
    registry); MLflow's own default (``MLFLOW_TRACKING_URI``) when both are None."""
    if client is not None:
        return client
    if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri.strip()):
        raise UsageError(f"tracking_uri must be a non-empty string, got {tracking_uri!r}")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def where(client: Any) -> str:
    """The tracking URI a client talks to, for error messages."""
    return str(getattr(client, "_tracking_client", None) and client._tracking_client.tracking_uri
               or getattr(client, "tracking_uri", "") or "the configured MLflow server")


@contextlib.contextmanager
def mlflow_errors(action: str, client: Any) -> Iterator[None]:
    """Re-raise what MLflow (or the HTTP layer under it) raises while doing ``action`` as a
    one-line StoreError naming the action and the server. Our own errors pass through."""
    from tg_bridge.exceptions import TgBridgeError

    try:
        yield
    except TgBridgeError:
        raise
    except Exception as exc:
        # MLflow's messages often carry the server's answer (HTML, a remote traceback): one
        # line for the user, and a cut, since the server is not ours
        detail = " ".join(str(exc)[:2_000].split())[:500]
        raise StoreError(f"MLflow at {where(client)}: cannot {action}: "
                         f"{type(exc).__name__}: {detail}") from exc
