"""The MLflow Prompt Registry: register the best prompts as new versions, apply them back.

:func:`register_prompts` stores each change of a Patch (e.g. ``result.best_patch``) as a new
version of an MLflow prompt, in MLflow's ``{{ name }}`` placeholder format
(:mod:`tg_bridge_mlflow.templates`), and points an alias (default ``tg-candidate``) at it.
The prompt text the change replaced is registered too (once: reused while it is the latest
version) so MLflow shows the two versions side by side and the way back is in the registry.

:func:`patch_from_registry` turns registry versions back into a tg_bridge
:class:`~tg_bridge.Patch` for :func:`tg_bridge.apply_patch` (in any process): each change
replaces the registered base text by the version's text, both converted back to the app's
template format, and carries the target key and stable location the version's tags name.

Tags written on each version: ``tg_bridge.target`` (binding key), ``tg_bridge.template_format``,
``tg_bridge.role`` (``original`` / ``candidate``), and on candidates ``tg_bridge.base_version``,
``tg_bridge.old_hash`` (SHA-256 of the base text), ``tg_bridge.run_id``, ``tg_bridge.path``,
``tg_bridge.owner_type`` when known.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tg_bridge.exceptions import PatchValidationError, UsageError
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.variable import content_hash

from .client import mlflow_client, mlflow_errors, where
from .templates import from_mlflow, to_mlflow

__all__ = ["DEFAULT_ALIAS", "RegisteredPrompt", "patch_from_registry", "prompt_name",
           "register_prompts"]

DEFAULT_ALIAS = "tg-candidate"
TAG = "tg_bridge."
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_URI = re.compile(r"^prompts:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))?$")
#: location keys of a change's provenance carried through the registry (see apply_patch)
_LOCATION = ("path", "owner_type")


@dataclasses.dataclass(frozen=True)
class RegisteredPrompt:
    """One registered change: prompt ``name``, candidate ``version``, the ``base_version``
    holding the text it replaces, and the tg_bridge ``target`` key."""

    name: str
    version: int
    base_version: int
    target: str
    alias: str

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}@{self.alias}"


def prompt_name(target: str, prefix: str = "tg") -> str:
    """A valid MLflow prompt name for a binding key (letters, digits, ``_ . -``)."""
    name = _NOT_NAME.sub("-", f"{prefix}-{target}" if prefix else target).strip("-.")
    return name[:200] or "tg-prompt"


def register_prompts(
    patch: Any,
    *,
    alias: str = DEFAULT_ALIAS,
    names: Mapping[str, str] | None = None,
    prefix: str = "tg",
    commit_message: str | None = None,
    tracking_uri: str | None = None,
    client: Any = None,
) -> list[RegisteredPrompt]:
    """Register every change of ``patch`` (a Patch; an OptimizationResult: its
    ``best_patch``; a FeedbackOptimization from :func:`optimize_traces`: its ``patch``) as a
    new prompt version with ``alias`` pointing at it.

    ``names`` maps a change's target key to its MLflow prompt name (default:
    :func:`prompt_name` of the key with ``prefix``). Every change is converted before
    anything is registered: PatchValidationError (reason ``placeholders``) when a prompt has
    a field MLflow's format cannot express; StoreError when the server fails."""
    for attr in ("best_patch", "patch"):  # OptimizationResult, FeedbackOptimization
        if not isinstance(patch, Patch) and isinstance(getattr(patch, attr, None), Patch):
            patch = getattr(patch, attr)
    if not isinstance(patch, Patch):
        raise UsageError(f"register_prompts() needs a Patch or an OptimizationResult, got"
                         f" {type(patch).__name__}")
    if not patch.changes:
        raise UsageError("the patch has no change to register")
    if not isinstance(alias, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", alias):
        raise UsageError(f"alias must be letters, digits, '_' or '-', got {alias!r}")
    plans = []
    for change in patch.changes:  # convert all first: nothing registered for a bad patch
        fmt = change.template_format
        try:
            base, new = to_mlflow(change.old, fmt), to_mlflow(change.new, fmt)
        except PatchValidationError as exc:
            raise PatchValidationError(f"prompt {change.target!r}: {exc}", target=change.target,
                                       reason=exc.reason) from exc
        name = (names or {}).get(change.target) or prompt_name(change.target, prefix)
        plans.append((change, name, base, new))
    taken: dict[str, str] = {}
    for change, name, _, _ in plans:
        if taken.setdefault(name, change.target) != change.target:
            raise UsageError(f"prompts {taken[name]!r} and {change.target!r} would share the MLflow"
                             f" name {name!r} (one alias per name): pass names={{...}}")
    client = mlflow_client(tracking_uri, client)
    run_id = str(patch.metadata.get("run_id", "") or "")
    out = []
    for change, name, base, new in plans:
        common = {f"{TAG}target": change.target, f"{TAG}template_format": change.template_format}
        with mlflow_errors(f"register prompt {name!r}", client):
            base_version = _base_version(client, name, base, change.target)
            if base_version is None:
                base_version = int(client.register_prompt(
                    name, base, commit_message="original prompt (before tg-bridge)",
                    tags={**common, f"{TAG}role": "original"}).version)
            tags = {**common, f"{TAG}role": "candidate", f"{TAG}base_version": str(base_version),
                    f"{TAG}old_hash": content_hash(change.old)}
            if run_id:
                tags[f"{TAG}run_id"] = run_id
            for key in _LOCATION:
                value = change.provenance.get(key)
                if isinstance(value, str) and value:
                    tags[f"{TAG}{key}"] = value
            version = int(client.register_prompt(
                name, new, commit_message=commit_message or f"tg-bridge run {run_id or '?'}",
                tags=tags).version)
            client.set_prompt_alias(name, alias, version)
        out.append(RegisteredPrompt(name, version, base_version, change.target, alias))
    return out


def _base_version(client: Any, name: str, base: str, target: str) -> int | None:
    """The newest ``original`` version of ``name`` that holds ``base`` for ``target``; None
    when the prompt does not exist yet or has none."""
    from mlflow.exceptions import MlflowException

    try:
        versions = list(client.search_prompt_versions(name))
    except MlflowException:  # no such prompt yet (others fail the registration that follows)
        return None
    found = [int(v.version) for v in versions
             if v.template == base and (v.tags or {}).get(f"{TAG}target") == target
             and (v.tags or {}).get(f"{TAG}role") == "original"]
    return max(found) if found else None


def patch_from_registry(
    prompts: str | Iterable[str],
    *,
    alias: str | None = None,
    version: int | None = None,
    tracking_uri: str | None = None,
    client: Any = None,
) -> Patch:
    """A Patch (unapplied) from registry versions registered by :func:`register_prompts`.

    ``prompts``: a name or ``prompts:/name@alias`` / ``prompts:/name/3`` URI, or several.
    A bare name takes ``version`` when given, else ``alias`` (default ``tg-candidate``).
    Apply it with ``tg_bridge.apply_patch(app, patch)``; ``patch.revert()`` restores the app.
    Raises UsageError (not a tg_bridge version, a chat-style prompt), PatchValidationError
    (a base text whose hash is not the recorded one: edited in the registry), StoreError."""
    if isinstance(version, bool) or (version is not None and (not isinstance(version, int)
                                                              or version < 1)):
        raise UsageError(f"version must be an integer >= 1, got {version!r}")
    names = [prompts] if isinstance(prompts, str) else list(prompts)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise UsageError(f"prompts must be a prompt name or URI, or a list of them, got {prompts!r}")
    client = mlflow_client(tracking_uri, client)
    changes = []
    for ref in names:
        name, ver, ali = _parse(ref, version, alias)
        with mlflow_errors(f"load prompt {ref!r}", client):
            found = (client.get_prompt_version(name, ver) if ver is not None
                     else client.get_prompt_version_by_alias(name, ali))
        if found is None:
            raise UsageError(f"MLflow at {where(client)} has no prompt {ref!r}")
        changes.append(_change_of(client, name, found, ref))
    return Patch(changes, {"source": "mlflow", "prompts": names})


def _parse(ref: str, version: int | None, alias: str | None) -> tuple[str, int | None, str]:
    match = _URI.match(ref)
    if ref.startswith("prompts:/"):
        if not match:
            raise UsageError(f"not a prompt URI: {ref!r} (expected prompts:/NAME@ALIAS or"
                             " prompts:/NAME/VERSION)")
        if match["version"]:
            return match["name"], int(match["version"]), ""
        return match["name"], None, match["alias"] or alias or DEFAULT_ALIAS
    return ref, version, alias or DEFAULT_ALIAS


def _change_of(client: Any, name: str, found: Any, ref: str) -> Change:
    tags = dict(getattr(found, "tags", None) or {})
    target, fmt = tags.get(f"{TAG}target"), tags.get(f"{TAG}template_format", "none")
    base_number = tags.get(f"{TAG}base_version")
    if not target or not base_number or not str(base_number).isdigit():
        raise UsageError(f"prompt {ref!r} (version {found.version}) was not registered by"
                         " tg_bridge_mlflow.register_prompts (no tg_bridge.target /"
                         " tg_bridge.base_version tags): it names no prompt of an app")
    if not isinstance(found.template, str):
        raise UsageError(f"prompt {ref!r} is a chat prompt (a list of messages); only text"
                         " prompts map to one app prompt")
    with mlflow_errors(f"load the base version {base_number} of prompt {name!r}", client):
        base = client.get_prompt_version(name, int(base_number))
    old, new = from_mlflow(base.template, fmt), from_mlflow(found.template, fmt)
    old_hash = content_hash(old)
    if tags.get(f"{TAG}old_hash") not in (None, old_hash):
        raise PatchValidationError(
            f"prompt {ref!r}: base version {base_number} no longer holds the text the candidate"
            " was made from (its hash differs from tg_bridge.old_hash)", target=target,
            reason="schema")
    provenance: dict[str, Any] = {"template_format": fmt, "source": "mlflow",
                                  "mlflow_prompt": f"prompts:/{name}/{found.version}"}
    for key in _LOCATION:
        if tags.get(f"{TAG}{key}"):
            provenance[key] = tags[f"{TAG}{key}"]
    return Change(target=target, kind="replace", old=old, new=new, old_hash=old_hash,
                  provenance=provenance)
