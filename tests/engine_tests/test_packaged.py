"""Packaged models: found through installed distributions' RECORDs, assembled once, verified, requantized.

The part packages here are real installed distributions (a dist-info folder on sys.path) holding the parts of a
small synthetic GGUF, so the whole path runs: metadata lookup, per-part and whole-file checks, llama.cpp's
quantizer, the stamp, the lock.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import ModelError
from engine.packaged import PackagedModel, find_parts, model_path, ready_path


def _install_part(site: Path, package: str, version: str, data: bytes, index: int) -> None:
    module = package.replace("-", "_")
    (site / module / "data").mkdir(parents=True)
    (site / module / "__init__.py").write_text("")
    name = f"part{index:02d}.bin"
    (site / module / "data" / name).write_bytes(data)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(
        f"{module}/__init__.py,,\n{module}/data/{name},sha256={digest},{len(data)}\n{info.name}/RECORD,,\n"
    )


@pytest.fixture
def packaged(tmp_path: Path, qwen35_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackagedModel]:
    """A three-part packaged model installed on sys.path, and an empty model cache."""
    data = qwen35_model.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    site = tmp_path / "site"
    names = tuple(f"qcode-test-part{i}" for i in (1, 2, 3))
    for i, name in enumerate(names):
        _install_part(site, name, "1.0.0", data[cut[i] : cut[i + 1]], i + 1)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path / "cache"))
    yield PackagedModel(
        name="tiny", title="a synthetic qwen35", extra="tiny-model", packages=names, version="1.0.0",
        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
    )
    sys.modules.pop("qcode_test_part1", None)


def test_parts_are_found_in_order_without_importing_them(packaged: PackagedModel) -> None:
    parts = find_parts(packaged)
    assert [p.package for p in parts] == list(packaged.packages)
    assert [p.path.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin"]
    assert all(p.size and p.sha256 for p in parts)
    assert "qcode_test_part1" not in sys.modules


def test_first_use_builds_a_q4_k_s_file_once(packaged: PackagedModel) -> None:
    from engine.model import read_model_info

    seen: list[str] = []
    path = model_path(packaged, lambda text, _fraction: seen.append(text))
    assert path.name == "tiny-q4_k_s.gguf" and ready_path(packaged) == path
    assert read_model_info(path).quant == "Q4_K_S"
    assert "assembling tiny" in seen and any("quantiz" in text for text in seen)
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".tiny.lock")) == [
        "tiny-q4_k_s.gguf", "tiny-q4_k_s.gguf.json"
    ]  # the assembled source is gone
    seen.clear()
    assert model_path(packaged, lambda text, _fraction: seen.append(text)) == path
    assert seen == []  # built once


def test_two_processes_building_at_once_build_it_once(packaged: PackagedModel) -> None:
    results: list[Path | BaseException] = []

    def build() -> None:
        try:
            results.append(model_path(packaged))
        except BaseException as exc:  # reported below
            results.append(exc)

    workers = [threading.Thread(target=build) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 2 and results[0] == results[1] and isinstance(results[0], Path)


def test_a_missing_part_names_the_package_to_reinstall(packaged: PackagedModel) -> None:
    missing = dataclasses.replace(packaged, packages=(*packaged.packages[:2], "qcode-test-part9"))
    with pytest.raises(ModelError, match=r"part package qcode-test-part9 is not installed.*"
                       r"pip install --force-reinstall 'qcode-test-part9==1\.0\.0'"):
        model_path(missing)
    assert ready_path(missing) is None


def test_a_wrong_version_is_refused(packaged: PackagedModel) -> None:
    with pytest.raises(ModelError, match=r"qcode-test-part1 is version 1\.0\.0, not 2\.0\.0"):
        find_parts(dataclasses.replace(packaged, version="2.0.0"))


def test_a_damaged_part_is_named_and_nothing_is_left(packaged: PackagedModel) -> None:
    part = find_parts(packaged)[1]
    data = bytearray(part.path.read_bytes())
    data[100] ^= 0xFF
    part.path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"qcode-test-part2 is damaged"):
        model_path(packaged)
    cache = ready_path(packaged)
    assert cache is None
    leftovers = [p.name for p in (Path(part.path).parents[3] / "cache" / "models").iterdir()]
    assert [name for name in leftovers if not name.endswith(".lock")] == []


def test_a_wrong_whole_file_hash_is_refused(packaged: PackagedModel) -> None:
    with pytest.raises(ModelError, match=r"expected .* bytes and 000000000000"):
        model_path(dataclasses.replace(packaged, sha256="0" * 64))


def test_too_little_disk_space_is_one_clear_error(packaged: PackagedModel) -> None:
    with pytest.raises(ModelError, match=r"not enough disk space .* to build model tiny"):
        model_path(dataclasses.replace(packaged, size=10**18))


def test_a_changed_pin_rebuilds(packaged: PackagedModel) -> None:
    path = model_path(packaged)
    stamp = path.with_name(path.name + ".json")
    stamp.write_text(stamp.read_text().replace(packaged.sha256, "f" * 64))
    assert ready_path(packaged) is None  # built from something else: not trusted, rebuilt at next use
    assert model_path(packaged) == path and ready_path(packaged) == path
