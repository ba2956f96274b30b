"""Embedded models assembled from data-only packages (tg_bridge/engines/models.py).

Fake distributions (a dist-info with a RECORD naming ``pkg/data/partNN.bin``) on a temporary
sys.path entry stand for the Qwen packages, so these tests need neither the 1.6 GB packages
nor llama.cpp.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tg_bridge
from tg_bridge.engines import models
from tg_bridge.exceptions import ConfigurationError


def make_dist(site: Path, name: str, version: str, index: int, data: bytes) -> Path:
    """A minimal installed distribution holding ``<pkg>/data/partNN.bin``."""
    pkg = name.replace("-", "_")
    part = site / pkg / "data" / f"part{index:02d}.bin"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    (site / pkg / "__init__.py").write_text("raise RuntimeError('never import me')\n")
    info = site / f"{pkg}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(
        f"{pkg}/__init__.py,,\n{pkg}/data/part{index:02d}.bin,,\n{info.name}/RECORD,,\n"
    )
    return part


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A 3-part model 'fake-model' installed on sys.path; the cache in tmp_path/cache."""
    site = tmp_path / "site"
    site.mkdir()
    chunks = [os.urandom(70_000), os.urandom(50_000), b"tail" * 1000]
    names = tuple(f"fake-model-part{i}" for i in range(1, 4))
    parts = [make_dist(site, n, "1.2.0", i, c) for i, (n, c) in enumerate(zip(names, chunks), 1)]
    blob = b"".join(chunks)
    spec = models.ModelSpec(
        name="fake-model", filename="fake-model.gguf", size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(), packages=names, version="1.2.0",
        extra="models",
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setitem(models.MODELS, "fake-model", spec)
    monkeypatch.setenv("TG_BRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_verified", set())
    return spec, parts, blob, site


def test_parts_are_concatenated_in_order_into_the_cache(fake_model, tmp_path):
    _, _, blob, _ = fake_model
    path = Path(models.model_path("fake-model"))
    assert path == tmp_path / "cache" / "models" / "fake-model.gguf"
    assert path.read_bytes() == blob
    assert not [p for p in path.parent.iterdir() if p.suffix == ".part"]  # no temp file left
    assert "fake_model_part1" not in sys.modules  # the packages' code was never imported


def test_assembled_once_then_reused(fake_model):
    first = Path(models.model_path("fake-model"))
    stamp = first.stat().st_mtime_ns
    models._verified.clear()  # a new process: re-hashes, but does not rewrite
    assert Path(models.model_path("fake-model")) == first
    assert first.stat().st_mtime_ns == stamp


def test_a_corrupt_cached_file_is_rebuilt(fake_model):
    _, _, blob, _ = fake_model
    path = Path(models.model_path("fake-model"))
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, wrong hash
    path.write_bytes(bytes(data))
    models._verified.clear()
    assert Path(models.model_path("fake-model")).read_bytes() == blob


def test_a_corrupt_part_is_a_clear_error_and_leaves_no_file(fake_model, tmp_path):
    _, parts, _, _ = fake_model
    parts[1].write_bytes(b"x" * len(parts[1].read_bytes()))
    with pytest.raises(ConfigurationError) as info:
        models.model_path("fake-model")
    message = str(info.value)
    assert "corrupt" in message and 'pip install "tg-bridge[models]" --force-reinstall' in message
    cache = tmp_path / "cache" / "models"
    assert not [p for p in cache.iterdir() if p.suffix in (".gguf", ".part")]


def test_a_missing_package_names_the_pip_line(fake_model, monkeypatch):
    spec, _, _, _ = fake_model
    missing = models.ModelSpec(**{**spec.__dict__, "packages": (*spec.packages, "fake-model-part4")})
    monkeypatch.setitem(models.MODELS, "fake-model", missing)
    with pytest.raises(ConfigurationError) as info:
        models.model_path("fake-model")
    assert "fake-model-part4==1.2.0" in str(info.value)
    assert 'pip install "tg-bridge[models]"' in str(info.value)


def test_a_package_of_another_version_is_refused(fake_model, monkeypatch):
    spec, _, _, _ = fake_model
    monkeypatch.setitem(models.MODELS, "fake-model",
                        models.ModelSpec(**{**spec.__dict__, "version": "9.9.9"}))
    with pytest.raises(ConfigurationError, match="needs fake-model-part1==9.9.9, found 1.2.0"):
        models.model_path("fake-model")


def test_local_engine_checks_the_packages_when_built(fake_model, monkeypatch):
    spec, _, _, _ = fake_model
    monkeypatch.setitem(models.MODELS, "fake-model",
                        models.ModelSpec(**{**spec.__dict__, "packages": ("no-such-part1",)}))
    with pytest.raises(ConfigurationError, match="no-such-part1"):
        tg_bridge.engine("local:fake-model")


def test_concurrent_processes_assemble_one_good_file(fake_model, tmp_path):
    """Two processes race to assemble: both get the verified file, no temp file remains."""
    spec, _, blob, site = fake_model
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        from tg_bridge.engines import models
        models.MODELS["fake-model"] = models.ModelSpec(**{spec.__dict__!r})
        print(models.model_path("fake-model"))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    path = Path(paths.pop())
    assert path.read_bytes() == blob
    assert not [p for p in path.parent.iterdir() if p.suffix == ".part"]


def test_names_aliases_and_the_environment_override(monkeypatch):
    assert models.resolve_name("Qwen-0.5B") == "qwen2.5-coder-0.5b"
    assert models.resolve_name("smollm2") == "smollm2"
    assert models.resolve_name("gpt-17") is None
    monkeypatch.delenv("TG_BRIDGE_LOCAL_MODEL", raising=False)
    assert models.default_model() == "qwen2.5-coder-0.5b"
    assert models.default_model(backward=True) == "qwen2.5-coder-1.5b"
    monkeypatch.setenv("TG_BRIDGE_LOCAL_MODEL", "smollm2")
    assert models.default_model() == models.default_model(backward=True) == "smollm2"
    monkeypatch.setenv("TG_BRIDGE_LOCAL_MODEL", "nonsense")
    with pytest.raises(ConfigurationError, match="names no embedded model"):
        models.default_model()
    with pytest.raises(ConfigurationError, match="unknown embedded model"):
        models.model_path("nonsense")


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TG_BRIDGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.cache_dir() == tmp_path / "tg_bridge" / "models"


def test_default_backward_engine_is_the_backward_model(monkeypatch):
    """With nothing configured, "local" is the app model and the backward default is the
    backward model (here both SmolLM2 via the override; the names are what differ)."""
    from tg_bridge.engines import resolve_engine

    monkeypatch.setattr(tg_bridge.engines, "_resolved", {})
    monkeypatch.setenv("TG_BRIDGE_LOCAL_MODEL", "smollm2")
    assert resolve_engine(backward=True).model_name == "smollm2"
    monkeypatch.delenv("TG_BRIDGE_LOCAL_MODEL")
    seen: list[str] = []
    monkeypatch.setattr(tg_bridge.engines, "engine", lambda spec: seen.append(spec) or spec)
    resolve_engine(backward=True)
    resolve_engine()
    assert seen == ["local:qwen2.5-coder-1.5b", "local"]
