"""Prompt Registry: the best prompts registered as versions with an alias, in MLflow's
placeholder format, then applied from the registry to another live app and reverted."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from tg_bridge_mlflow import DEFAULT_ALIAS, patch_from_registry, register_prompts

import tg_bridge
from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge import Patch
from tg_bridge.exceptions import PatchValidationError, UsageError
from tg_bridge.patching.apply import patch_between
from tg_bridge.testing import FakeApp

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


def test_best_prompt_registered_then_applied_to_a_live_app_and_reverted(mlflow_server, tmp_path):
    app = FakeApp("Answer {q}", polite_model, name="reg")
    result = tg_bridge.optimize(app, TRAIN, metric=metric, batch_size=4, progress=False,
                                engine=improving_engine(lambda old: "Please answer {q}"),
                                store=tmp_path / "runs.db", in_place=False)
    assert app.template == "Answer {q}" and result.best_patch.changes

    registered = register_prompts(result, tracking_uri=mlflow_server.url)
    assert [r.target for r in registered] == ["fake:reg/template"]
    entry = registered[0]
    assert entry.alias == DEFAULT_ALIAS == "tg-candidate"
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    candidate = client.get_prompt_version_by_alias(entry.name, "tg-candidate")
    assert int(candidate.version) == entry.version
    assert candidate.template == "Please answer {{ q }}"  # MLflow's placeholder format
    assert candidate.variables == {"q"}
    assert candidate.tags["tg_bridge.run_id"] == result.run_id
    base = client.get_prompt_version(entry.name, entry.base_version)
    assert base.template == "Answer {{ q }}" and base.tags["tg_bridge.role"] == "original"

    # another app (as in another process) takes the prompt from the registry
    live = FakeApp("Answer {q}", polite_model, name="reg")
    before = live.template
    patch = patch_from_registry(entry.uri, tracking_uri=mlflow_server.url)
    applied = tg_bridge.apply_patch(live, patch)
    assert live.template == "Please answer {q}"
    assert live.invoke({"q": "fig"}) == "Certainly! FIG"
    applied.revert()
    assert live.template == before  # byte for byte

    # registering the same base again reuses its version; the new candidate gets the alias
    again = register_prompts(result, tracking_uri=mlflow_server.url)[0]
    assert again.base_version == entry.base_version and again.version == entry.version + 1


def test_literal_braces_survive_the_registry(mlflow_server):
    old = 'Answer {q} as JSON like {{"answer": "..."}}'
    new = 'Please answer {q} as JSON like {{"answer": "..."}}'
    app = FakeApp(old, lambda prompt: prompt, name="braces")
    patch = patch_between({"fake:braces/template": old}, {"fake:braces/template": new},
                          formats={"fake:braces/template": "f-string"}, bindings=app.bindings())
    entry = register_prompts(patch, tracking_uri=mlflow_server.url, alias="staging")[0]
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    assert client.get_prompt_version(entry.name, entry.version).template == (
        'Please answer {{ q }} as JSON like {"answer": "..."}')
    loaded = patch_from_registry(entry.name, alias="staging", tracking_uri=mlflow_server.url)
    assert loaded.changes[0].old == old and loaded.changes[0].new == new
    applied = tg_bridge.apply_patch(app, loaded)
    assert app.template == new
    applied.revert()
    assert app.template == old
    by_version = patch_from_registry(f"prompts:/{entry.name}/{entry.version}",
                                     tracking_uri=mlflow_server.url)
    assert by_version.changes == loaded.changes


def test_an_inexpressible_field_registers_nothing(mlflow_server):
    app = FakeApp("Answer {q!r}", lambda prompt: prompt, name="conv")
    patch = patch_between({"fake:conv/template": "Answer {q!r}"},
                          {"fake:conv/template": "Please answer {q!r}"},
                          formats={"fake:conv/template": "f-string"}, bindings=app.bindings())
    with pytest.raises(PatchValidationError, match="fake:conv/template"):
        register_prompts(patch, tracking_uri=mlflow_server.url, prefix="conv")
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    assert not [p for p in client.search_prompts() if p.name.startswith("conv-")]


def test_a_prompt_not_registered_by_tg_bridge_is_refused(mlflow_server):
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    version = client.register_prompt("hand-made", "Hello {{ name }}")
    client.set_prompt_alias("hand-made", "tg-candidate", version.version)
    with pytest.raises(UsageError, match="not registered by"):
        patch_from_registry("hand-made", tracking_uri=mlflow_server.url)
    with pytest.raises(UsageError, match="no change"):
        register_prompts(Patch(), tracking_uri=mlflow_server.url)
    two = patch_between({"a/b": "x {q}", "a:b": "y {q}"}, {"a/b": "x2 {q}", "a:b": "y2 {q}"},
                        formats={"a/b": "f-string", "a:b": "f-string"})
    with pytest.raises(UsageError, match="would share the MLflow name"):
        register_prompts(two, tracking_uri=mlflow_server.url)
    with pytest.raises(UsageError, match="not a prompt URI"):
        patch_from_registry("prompts:/a/b/c", tracking_uri=mlflow_server.url)
