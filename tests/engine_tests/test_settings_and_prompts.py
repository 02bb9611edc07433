"""Settings sources and their errors; strict prompt templates and their overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SettingsError, TemplateError
from engine.model import ModelInfo
from engine.prompts import build_prompt, render
from engine.settings import describe_settings, load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("QCODE_CONFIG", str(path))
    for name in ("QCODE_N_CTX", "QCODE_TEMPERATURE", "QCODE_DRAFT", "QCODE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_sources_in_order_file_env_arguments(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('n_ctx = 4096\ntemperature = 0.5\ndraft = "ngram"\n')
    monkeypatch.setenv("QCODE_TEMPERATURE", "0.7")
    settings = load_settings(draft="none")
    assert settings.n_ctx == 4096 and settings.temperature == 0.7 and settings.draft == "none"
    sources = {name: where for name, _, where in describe_settings(settings, {"draft": "none"})}
    assert sources["n_ctx"].startswith("config file")
    assert sources["temperature"] == "environment variable QCODE_TEMPERATURE"
    assert sources["draft"] == "command line" and sources["top_k"] == "default"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("n_ctx = 10\n", None, "invalid setting n_ctx (from config file"),
        ("", ("QCODE_DRAFT", "fast"), "invalid setting draft (from environment variable QCODE_DRAFT)"),
        ("kv_type_v = 'q8_0'\nflash_attn = false\n", None, "needs flash_attn"),
        ("n_ctx = [\n", None, "is not valid TOML"),
        ("colour = 'red'\n", None, "unknown setting 'colour'"),
    ],
)
def test_invalid_settings_name_the_setting_and_its_source(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: tuple[str, str] | None, message: str
) -> None:
    config_file.write_text(toml)
    if env:
        monkeypatch.setenv(*env)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_an_explicit_argument_error_names_the_command_line(config_file: Path) -> None:
    config_file.write_text("")
    with pytest.raises(SettingsError, match=r"invalid setting top_p \(from command line\)"):
        load_settings(top_p=3.0)


def test_a_named_config_file_that_is_missing_is_an_error(config_file: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()


def test_templates_are_strict_about_missing_variables() -> None:
    with pytest.raises(TemplateError, match="'code' is undefined"):
        render("explain", None, language="python", language_name="Python", fence="python", path="", instruction="",
               context="", focus="")


def test_a_user_prompt_folder_overrides_one_template(tmp_path: Path) -> None:
    (tmp_path / "explain.txt").write_text("Explain briefly: {{ code }}")
    assert render("explain", tmp_path, code="x = 1") == "Explain briefly: x = 1"
    assert "Review" in render("review", tmp_path, code="x", language="", language_name="source", fence="",
                              path="", instruction="", context="", focus="")


def _info(template: str | None) -> ModelInfo:
    return ModelInfo(path=Path("m.gguf"), arch="test", name="t", quant="Q4_K_S", size_bytes=1, n_ctx_train=1,
                     vocab_size=1, n_layer=1, n_embd=1, has_fim=False, chat_template=template, n_nextn_layers=0,
                     is_hybrid=False, is_recurrent=False, n_swa=0)


def test_plain_format_for_base_models_keeps_the_system_part_as_a_prefix() -> None:
    built = build_prompt(_info(None), "SYSTEM", "do it", prefill="```python\n")
    assert built.text.startswith("SYSTEM\n\n") and built.text.endswith("```python\n")
    assert built.text[: built.prefix_chars] == "SYSTEM\n\n"


def test_a_chat_template_that_raises_gives_a_template_error() -> None:
    with pytest.raises(TemplateError, match="refused"):
        build_prompt(_info("{{ raise_exception('no system role') }}"), "s", "u")
