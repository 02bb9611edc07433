"""The engine on the real default model: streaming, stops, cancel, seeds, stats, prefix reuse, bad models."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from engine import DoneEvent, GenerationRequest, TextEvent
from engine.errors import ContextError, ModelError
from engine.model import read_model_info
from engine.text_stream import TextStream

CODE_PROMPT = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"


def collect(engine: Any, request: GenerationRequest, cancel: threading.Event | None = None) -> tuple[
    list[str], DoneEvent
]:
    pieces: list[str] = []
    done: DoneEvent | None = None
    for event in engine.stream(request, cancel):
        if isinstance(event, TextEvent):
            pieces.append(event.text)
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    return pieces, done


def test_default_model_metadata(real_engine: Any) -> None:
    info = real_engine.info
    assert info.arch == "qwen2" and "1.5B" in info.name
    assert info.quant == "Q4_K_S"  # requantized from the package's Q4_K_M, like the target
    assert info.vocab_size == 151936  # the same as coder-0.5b's: the pair drafts for each other
    assert info.has_fim and not info.is_hybrid and not info.n_swa
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template  # ChatML


def test_stream_pieces_add_up_to_the_answer(real_engine: Any) -> None:
    pieces, done = collect(real_engine, GenerationRequest(CODE_PROMPT, max_tokens=24, drafter="none"))
    assert len(pieces) > 3
    assert "".join(pieces) == done.text
    assert done.stats.completion_tokens == 24 == len(done.tokens)
    assert done.stats.finish_reason == "length"
    assert done.stats.ttft_ms > 0 and done.stats.decode_tokens_per_s > 0
    assert done.stats.kv_type == "q8_0" and done.stats.model


def test_stop_string_ends_the_answer_and_is_not_shown(real_engine: Any) -> None:
    _, free = collect(real_engine, GenerationRequest(CODE_PROMPT, max_tokens=40, drafter="none"))
    assert "\n" in free.text.strip("\n")
    stop = free.text.strip("\n").split("\n")[1][:6]  # something the free run really writes
    pieces, done = collect(
        real_engine, GenerationRequest(CODE_PROMPT, max_tokens=40, drafter="none", stop=(stop,))
    )
    assert done.stats.finish_reason == "stop"
    assert stop not in done.text and "".join(pieces) == done.text
    assert free.text.startswith(done.text)


def test_cancel_from_another_thread_stops_within_a_step(real_engine: Any) -> None:
    cancel = threading.Event()
    seen = 0
    done = None
    for event in real_engine.stream(GenerationRequest(CODE_PROMPT, max_tokens=400, drafter="none"), cancel):
        if isinstance(event, TextEvent):
            seen += 1
            if seen == 3:
                threading.Thread(target=cancel.set).start()
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None and done.stats.finish_reason == "cancelled"
    assert done.stats.completion_tokens < 20


def test_seeded_sampling_repeats_and_differs_by_seed(real_engine: Any) -> None:
    def run(seed: int) -> str:
        request = GenerationRequest(CODE_PROMPT, max_tokens=24, temperature=1.0, seed=seed, drafter="none")
        return collect(real_engine, request)[1].text

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other


def test_prefix_reuse_evaluates_only_the_new_tail(real_engine: Any) -> None:
    shared = "import os\nimport sys\n\n" + "".join(f"def helper_{i}(x):\n    return x + {i}\n\n" for i in range(40))
    _, first = collect(real_engine, GenerationRequest(shared + "def main():\n", max_tokens=4, drafter="none"))
    _, second = collect(real_engine, GenerationRequest(shared + "class Main:\n", max_tokens=4, drafter="none"))
    tail = real_engine.count_tokens("class Main:\n")
    assert first.stats.prompt_tokens_evaluated == first.stats.prompt_tokens or first.stats.prompt_tokens > 300
    assert second.stats.prompt_tokens > 300
    assert second.stats.prompt_tokens_evaluated <= tail + 2
    # the very same request again: everything but the last prompt token is reused
    _, third = collect(real_engine, GenerationRequest(shared + "class Main:\n", max_tokens=4, drafter="none"))
    assert third.stats.prompt_tokens_evaluated == 1
    assert third.text == second.text


def test_task_prefix_snapshot_is_reused_across_different_prompts(real_engine: Any) -> None:
    system = "You are a careful assistant. " * 30 + "\n\n"
    a = GenerationRequest(system + "Question A: what is 2+2?\n", max_tokens=2, drafter="none",
                          prefix_chars=len(system))
    b = GenerationRequest(system + "Question B: name a colour.\n", max_tokens=2, drafter="none",
                          prefix_chars=len(system))
    collect(real_engine, a)
    collect(real_engine, GenerationRequest("Something unrelated entirely.\n", max_tokens=2, drafter="none"))
    _, done = collect(real_engine, b)
    assert done.stats.prompt_tokens_evaluated <= real_engine.count_tokens("Question B: name a colour.\n") + 2


def test_prompt_larger_than_context_is_a_clear_error(real_engine: Any) -> None:
    with pytest.raises(ContextError, match="context holds"):
        collect(real_engine, GenerationRequest("word " * (real_engine.n_ctx + 10), max_tokens=4))


def test_text_stream_keeps_utf8_whole_and_hides_stop_strings() -> None:
    stream = TextStream(stops=("STOP",))
    snowman = "☃".encode()
    out = [stream.add(b"a"), stream.add(snowman[:1]), stream.add(snowman[1:]), stream.add(b" ST")]
    assert out[:3] == ["a", "", "☃"]
    assert out[3] == " "  # "ST" may be the start of STOP: held back
    assert stream.add(b"OP and more") == "" and stream.stopped
    assert stream.text == "a☃ "


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"hello, I am not a model\n" * 10, "not a GGUF"),
    ],
)
def test_bad_model_files_fail_clearly(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        read_model_info(path)


def test_truncated_model_fails_before_llama_cpp(real_engine: Any, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with real_engine.info.path.open("rb") as source:
        cut.write_bytes(source.read(3_000_000))
    with pytest.raises(ModelError, match="truncated"):
        read_model_info(cut)
    head_only = tmp_path / "head.gguf"
    with real_engine.info.path.open("rb") as source:
        head_only.write_bytes(source.read(200))
    with pytest.raises(ModelError, match="truncated"):
        read_model_info(head_only)


def test_engine_refuses_a_directory_as_model(tmp_path: Path) -> None:
    from engine import Engine, load_settings

    with pytest.raises(ModelError, match="not a file"):
        Engine(load_settings(model=tmp_path))


def test_logits_are_read_only_for_requested_rows(real_engine: Any) -> None:
    # a 64-token prompt evaluated with logits for its last token only: one row, never n_ctx x n_vocab
    runtime = real_engine.runtime
    real_engine.cache.reset()
    tokens = real_engine.tokenize("x = 1\n" * 16)
    runtime.decode(tokens, 0, 1)
    real_engine.cache.extend(tokens)
    assert runtime.logits(1).shape == (1, runtime.n_vocab)


@pytest.mark.slow
def test_a_progress_callback_can_stop_the_model_load(default_settings: Any) -> None:
    """The TUI quits mid-load this way: the callback raises, llama.cpp stops reading, the exception comes out."""
    from engine import Engine
    from engine.errors import LoadCancelled

    fractions: list[float | None] = []

    def progress(text: str, fraction: float | None) -> None:
        if text.startswith("loading "):
            fractions.append(fraction)
            if fraction:
                raise LoadCancelled("the model load was cancelled")

    with pytest.raises(LoadCancelled):
        Engine(default_settings, progress)
    assert fractions and fractions[-1]  # stopped at the first real progress report, not after the load
    engine = Engine(default_settings)  # nothing left half-loaded: the next load works
    try:
        assert engine.complete(GenerationRequest("def f():\n", max_tokens=2)).stats.completion_tokens >= 1
    finally:
        engine.close()


@pytest.mark.slow
def test_the_draft_pairing_measurement_reports_progress(
    default_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` times the default model beside its draft model once per machine (seconds on a CPU, longer on a busy
    one): the load reports it, so the interface does not sit at "loading 100%" meanwhile."""
    from engine import Engine
    from engine.draft import pairing

    monkeypatch.setattr(pairing, "load_calibration", lambda key, directory=None: None)  # as on a new machine
    monkeypatch.setattr(pairing, "save_calibration", lambda key, seconds, directory=None: None)
    heard: list[tuple[str, float | None]] = []
    engine = Engine(default_settings.model_copy(update={"draft": "auto"}), lambda t, f: heard.append((t, f)))
    engine.close()
    texts = [text for text, _ in heard]
    calibrating = texts.index("calibrating draft costs")
    timing = next(i for i, text in enumerate(texts) if text.startswith("timing the draft model coder-0.5b"))
    assert calibrating < timing < texts.index("loaded coder-1.5b-q4_k_s.gguf")
    assert [f for t, f in heard if t.startswith("timing the draft model")][-1] == 1.0


@pytest.mark.slow
def test_ctrl_c_during_the_load_stops_it_and_is_raised_once(default_settings: Any) -> None:
    """Python runs a signal's handler at the next bytecode, which during a load is the first line of a ctypes
    callback, where a KeyboardInterrupt would be printed and dropped (the load went on, Ctrl+C was lost)."""
    import signal

    from engine import Engine, llama_log

    lines: list[str] = []

    def ctrl_c(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, in llama.cpp's first log line of the load

    # as in a terminal (a test run started in the background inherits an ignored SIGINT)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with llama_log.listening(ctrl_c), pytest.raises(KeyboardInterrupt):
            Engine(default_settings)
        assert not llama_log.interrupted()  # raised once, not again at the next load
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    engine = Engine(default_settings)
    engine.close()


def test_an_ignored_ctrl_c_stays_ignored_during_a_load() -> None:
    """A qcode started in the background (nohup, `&`) ignores SIGINT; the load must not start catching it."""
    import signal

    from engine import llama_log

    outer = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with llama_log.deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with llama_log.deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
