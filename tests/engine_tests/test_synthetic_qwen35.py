"""The synthetic qwen35 model loads in llama.cpp with Qwen3.6's structure, and its hybrid
memory behaves as the drafting and prefix-cache code needs (through the low-level API).

Numbers measured here on this CPU (q8_0 weights, n_rs_seq=16, flash attention on):
batch of 16 vs one token at a time: 0.0 max |logit diff| with f16 and q8_0 KV (logit std 4);
rollback of 5 of an 8-token batch vs a run that never saw them: 0.0; restoring a partial
(recurrent-only) checkpoint and cutting the KV cache back: 0.0. BATCH_NOISE leaves room
for another CPU's kernels while still catching a wrong state (those differ by 10 or more).
On an H100 (CUDA build of the same llama.cpp) batched logits are NOT bit-identical to single
steps (up to ~1 at 16 tokens, with argmax flips), so these bounds are CPU facts only.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import llama_cpp as L
import numpy as np
import pytest
from llama_cpp import llama_cpp_ext
from synthetic_qwen35 import (
    ADDED_TOKENS,
    CHAT_TEMPLATE,
    TOKEN_ENDOFTEXT,
    TOKEN_IM_END,
    TOKEN_IM_START,
    Shape,
    build_synthetic_qwen35,
    load_vocab,
    main,
    read_gguf_metadata,
    synthetic_qwen35_path,
)

pytestmark = pytest.mark.slow  # every test here loads the synthetic model
BATCH_NOISE = 1e-3
N_LAYER = 8
KV_TYPES = {"f16": L.GGML_TYPE_F16, "q8_0": L.GGML_TYPE_Q8_0}
FIM = {name: tid for tid, (name, _) in ADDED_TOKENS.items()}
PROMPT = b"<|im_start|>user\nWrite a function that adds two numbers.<|im_end|>\n<|im_start|>assistant\n"


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs every tensor and graph input at load; the test output stays readable."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qwen35")


@pytest.fixture(scope="module")
def model_path(model_dir: Path) -> Path:
    return synthetic_qwen35_path(model_dir, n_layer=N_LAYER, with_mtp=True)


def _load(path: Path, load_mtp: bool = False) -> Any:
    L.llama_log_set(_quiet_log, None)
    L.llama_backend_init()
    params = L.llama_model_default_params()
    params.load_mtp = load_mtp
    model = L.llama_model_load_from_file(str(path).encode(), params)
    assert model, f"llama.cpp could not load {path}"
    return model


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[Any]:
    loaded = _load(model_path)
    yield loaded
    L.llama_model_free(loaded)


@pytest.fixture(scope="module")
def vocab(model: Any) -> Any:
    return L.llama_model_get_vocab(model)


def _tokenize(vocab: Any, text: bytes, parse_special: bool = True) -> list[int]:
    buf = (L.llama_token * 512)()
    n = L.llama_tokenize(vocab, text, len(text), buf, 512, False, parse_special)
    assert n >= 0
    return list(buf[:n])


class Session:
    """One llama context with explicit positions, as the engine drives it."""

    def __init__(self, model: Any, *, kv: str = "q8_0", n_rs_seq: int = 16, **extra: Any) -> None:
        params = L.llama_context_default_params()
        params.n_ctx = 512
        params.n_batch = params.n_ubatch = 64
        # One thread: the machine has two cores shared with other test runs, where two
        # spinning threads are several times slower. Results do not depend on it.
        params.n_threads = params.n_threads_batch = 1
        params.n_rs_seq = n_rs_seq
        params.type_k = params.type_v = KV_TYPES[kv]
        params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED
        for key, value in extra.items():
            setattr(params, key, value)
        self.ctx = L.llama_init_from_model(model, params)
        assert self.ctx, "llama context creation failed"
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
        self.mem = L.llama_get_memory(self.ctx)

    def decode(self, tokens: list[int], pos0: int) -> np.ndarray:
        """Decode `tokens` at pos0.. in one batch; logits for every position (n, vocab)."""
        batch = L.llama_batch_init(len(tokens), 0, 1)
        try:
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = pos0 + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            batch.n_tokens = len(tokens)
            assert L.llama_decode(self.ctx, batch) == 0
        finally:
            L.llama_batch_free(batch)
        return np.stack([self.logits(i) for i in range(len(tokens))])

    def logits(self, i: int) -> np.ndarray:
        ptr = L.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def seq_rm(self, p0: int) -> bool:
        return bool(L.llama_memory_seq_rm(self.mem, 0, p0, -1))

    def pos_max(self) -> int:
        return int(L.llama_memory_seq_pos_max(self.mem, 0))


@pytest.fixture
def session(model: Any) -> Iterator[Callable[..., Session]]:
    made: list[Session] = []

    def new(**options: Any) -> Session:
        made.append(Session(model, **options))
        return made[-1]

    yield new
    for s in made:
        L.llama_free(s.ctx)


@pytest.fixture(scope="module")
def prompt(vocab: Any) -> list[int]:
    return _tokenize(vocab, PROMPT)


# A fixed continuation of ordinary tokens (what a draft would propose).
CONT = [int(t) for t in np.random.default_rng(1).integers(0, 151_000, size=16)]


def test_layout_matches_qwen36(model: Any, model_path: Path) -> None:
    meta = read_gguf_metadata(model_path.read_bytes())
    assert meta["general.architecture"] == "qwen35"
    # llama.cpp counts the NextN block inside block_count and subtracts it again.
    assert meta["qwen35.block_count"] == N_LAYER + 1
    assert meta["qwen35.nextn_predict_layers"] == 1
    assert meta["qwen35.full_attention_interval"] == 4
    assert L.llama_model_n_layer(model) == N_LAYER
    assert L.llama_model_n_layer_nextn(model) == 1
    assert L.llama_model_is_hybrid(model)
    assert not L.llama_model_is_recurrent(model)
    assert L.llama_model_n_embd(model) == Shape().n_embd
    assert L.llama_model_n_ctx_train(model) == 262_144
    assert L.llama_vocab_n_tokens(L.llama_model_get_vocab(model)) == len(load_vocab().tokens)
    assert 10e6 < model_path.stat().st_size < 25e6


def test_without_mtp_via_cli(model_dir: Path) -> None:
    out = model_dir / "cli-nomtp.gguf"
    assert main([str(out), "--layers", "4", "--no-mtp"]) == 0
    model = _load(out)
    try:
        assert L.llama_model_n_layer(model) == 4
        assert L.llama_model_n_layer_nextn(model) == 0
        assert L.llama_model_is_hybrid(model)
    finally:
        L.llama_model_free(model)
    # Same options, same seed: the same bytes (tests may rely on a model's greedy output).
    again = build_synthetic_qwen35(model_dir / "again.gguf", n_layer=4, with_mtp=False)
    assert again.read_bytes() == out.read_bytes()


def test_fim_and_special_tokens(vocab: Any) -> None:
    assert L.llama_vocab_fim_pre(vocab) == FIM["<|fim_prefix|>"] == 151659
    assert L.llama_vocab_fim_suf(vocab) == FIM["<|fim_suffix|>"]
    assert L.llama_vocab_fim_mid(vocab) == FIM["<|fim_middle|>"]
    assert L.llama_vocab_fim_pad(vocab) == FIM["<|fim_pad|>"]
    assert L.llama_vocab_fim_rep(vocab) == FIM["<|repo_name|>"]
    assert L.llama_vocab_fim_sep(vocab) == FIM["<|file_sep|>"]
    assert L.llama_vocab_eos(vocab) == TOKEN_IM_END
    assert L.llama_vocab_is_eog(vocab, TOKEN_IM_END)
    assert L.llama_vocab_is_eog(vocab, TOKEN_ENDOFTEXT)
    assert not L.llama_vocab_get_add_bos(vocab)
    fim = _tokenize(vocab, b"<|fim_prefix|>def f(<|fim_suffix|>)<|fim_middle|>")
    assert fim[0] == FIM["<|fim_prefix|>"] and fim[-1] == FIM["<|fim_middle|>"]
    # Control tokens are plain text unless specials are parsed; <think> is user-defined
    # (as in the released GGUFs) and always one token.
    assert FIM["<|fim_prefix|>"] not in _tokenize(vocab, b"<|fim_prefix|>", parse_special=False)
    assert _tokenize(vocab, b"<think>", parse_special=False) == [FIM["<think>"]]


def test_chat_template(model: Any, vocab: Any) -> None:
    template = L.llama_model_chat_template(model, None)
    assert template is not None and template.decode() == CHAT_TEMPLATE
    render = jinja2.Environment().from_string(template.decode()).render
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    off = render(messages=messages, add_generation_prompt=True, enable_thinking=False)
    assert off.endswith("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    on = render(messages=messages, add_generation_prompt=True)
    assert on.endswith("<|im_start|>assistant\n<think>\n")
    tokens = _tokenize(vocab, off.encode())
    for special in (TOKEN_IM_START, TOKEN_IM_END, FIM["<think>"], FIM["</think>"]):
        assert special in tokens


def test_greedy_decode_is_finite_and_varied(session: Callable[..., Session], prompt: list[int]) -> None:
    s = session()
    logits = s.decode(prompt, 0)[-1]
    out: list[int] = []
    for i in range(20):
        assert np.isfinite(logits).all()
        assert 1.0 < float(logits.std()) < 10.0
        out.append(int(logits.argmax()))
        logits = s.decode([out[-1]], len(prompt) + i)[0]
    assert len(set(out)) >= 5, out  # random weights, but not stuck on one token


@pytest.mark.parametrize("kv", ["f16", "q8_0"])
def test_batch_matches_single_steps(
    session: Callable[..., Session], prompt: list[int], kv: str
) -> None:
    batched, stepped = session(kv=kv), session(kv=kv)
    batched.decode(prompt, 0)
    stepped.decode(prompt, 0)
    P = len(prompt)
    together = batched.decode(CONT, P)
    one_by_one = np.concatenate([stepped.decode([t], P + i) for i, t in enumerate(CONT)])
    assert np.isfinite(together).all()
    assert np.abs(together - one_by_one).max() <= BATCH_NOISE
    assert (together.argmax(axis=1) == one_by_one.argmax(axis=1)).all()


@pytest.mark.parametrize(("kv", "keep"), [("f16", 3), ("q8_0", 3), ("q8_0", 1)])
def test_rollback_matches_a_run_that_never_saw_the_tokens(
    session: Callable[..., Session], prompt: list[int], kv: str, keep: int
) -> None:
    # The snapshots are the states after each token of the last decode call, so a rollback
    # must keep at least its first token (a verify batch keeps the sampled one). Dropping
    # the whole batch is accepted by seq_rm but leaves a wrong state (off by 17-27 here).
    P = len(prompt)
    draft, following = CONT[:8], CONT[8]
    rolled = session(kv=kv)
    rolled.decode(prompt, 0)
    rolled.decode(draft, P)
    assert rolled.seq_rm(P + keep)  # reject the rest of the 8
    assert rolled.pos_max() == P + keep - 1
    after_rollback = rolled.decode([following], P + keep)[0]

    fresh = session(kv=kv)
    fresh.decode(prompt, 0)
    fresh.decode(draft[:keep], P)
    expected = fresh.decode([following], P + keep)[0]
    assert np.abs(after_rollback - expected).max() <= BATCH_NOISE

    # The comparison has teeth: a state that still holds the 5 tokens is far off.
    kept = session(kv=kv)
    kept.decode(prompt, 0)
    kept.decode(draft, P)
    assert np.abs(kept.decode([following], P + 8)[0] - expected).max() > 1.0


def test_rollback_limits(session: Callable[..., Session], prompt: list[int]) -> None:
    P = len(prompt)
    no_slots = session(n_rs_seq=0)
    no_slots.decode(prompt, 0)
    no_slots.decode(CONT[:8], P)
    assert not no_slots.seq_rm(P + 3)  # recurrent state cannot be cut without snapshots

    deep = session(n_rs_seq=4)
    deep.decode(prompt, 0)
    deep.decode(CONT[:8], P)
    assert not deep.seq_rm(P + 3)  # 5 back is more than 4 slots
    assert deep.seq_rm(P + 4)
    assert not deep.seq_rm(P + 2)  # one pending rollback at a time, until the next decode


def test_partial_state_checkpoint_restores_the_recurrent_prefix(
    session: Callable[..., Session], prompt: list[int]
) -> None:
    P = len(prompt)
    s = session()
    s.decode(prompt, 0)
    size = L.llama_state_seq_get_size_ext(s.ctx, 0, L.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY)
    full_size = L.llama_state_seq_get_size_ext(s.ctx, 0, 0)
    shape = Shape()
    n_delta = N_LAYER - N_LAYER // shape.full_attention_interval
    conv_dim = shape.ssm_head_dim * (2 * shape.ssm_k_heads + shape.ssm_v_heads)
    per_layer = 4 * ((shape.ssm_conv - 1) * conv_dim + shape.ssm_head_dim**2 * shape.ssm_v_heads)
    # f32 conv + delta-rule state of each DeltaNet layer and a small header: no KV cache.
    assert n_delta * per_layer <= size < n_delta * per_layer + 1024
    assert full_size > size
    checkpoint = (ctypes.c_uint8 * size)()
    written = L.llama_state_seq_get_data_ext(
        s.ctx, checkpoint, size, 0, L.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
    )
    assert written == size

    s.decode(CONT[:10], P)  # a tail that is then abandoned
    restored = L.llama_state_seq_set_data_ext(
        s.ctx, checkpoint, size, 0, L.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
    )
    assert restored == size
    assert s.seq_rm(P)  # the attention KV for the abandoned tail
    assert s.pos_max() == P - 1
    tail = CONT[10:16]
    reused = s.decode(tail, P)

    fresh = session()
    fresh.decode(prompt, 0)
    assert np.abs(reused - fresh.decode(tail, P)).max() <= BATCH_NOISE


def test_mtp_head_drafts_with_finite_logits(model_path: Path, prompt: list[int]) -> None:
    model = _load(model_path, load_mtp=True)
    target = Session(model)
    draft = Session(model, n_rs_seq=0, ctx_type=L.LLAMA_CONTEXT_TYPE_MTP, ctx_other=target.ctx)
    n_embd = L.llama_model_n_embd(model)
    batch = L.llama_batch_init(len(prompt) + 1, n_embd, 1)
    batch_tokens = (L.llama_token * (len(prompt) + 1))()
    try:
        llama_cpp_ext.llama_set_embeddings_nextn(target.ctx, True, False)
        llama_cpp_ext.llama_set_embeddings_nextn(draft.ctx, True, True)
        first = int(target.decode(prompt, 0)[-1].argmax())
        h_ptr = llama_cpp_ext.llama_get_embeddings_nextn(target.ctx)
        hidden = np.ctypeslib.as_array(h_ptr, shape=(len(prompt), n_embd)).copy()
        assert np.isfinite(hidden).all()
        # The head sees token x_p with the trunk's hidden state of p-1 and predicts x_{p+1}.
        tokens = [*prompt, first]
        batch.token = batch_tokens
        rows = np.ctypeslib.as_array(batch.embd, shape=(len(tokens), n_embd))
        rows[0] = 0.0
        rows[1:] = hidden
        for i, token in enumerate(tokens):
            batch_tokens[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        assert L.llama_decode(draft.ctx, batch) == 0
        logits = draft.logits(-1)
        assert np.isfinite(logits).all() and logits.std() > 1.0
    finally:
        batch.token = ctypes.POINTER(L.llama_token)()  # ours, not the batch's to free
        L.llama_batch_free(batch)
        L.llama_free(draft.ctx)
        L.llama_free(target.ctx)
        L.llama_model_free(model)
