"""MTP drafting on the synthetic qwen35 model (hybrid memory, one NextN layer, random weights).

Random weights make the head a poor guesser, so acceptance is near zero; these tests check the rules that must hold
anyway: greedy drafted output equals plain output (within the measured batch noise), the head's memory after
rollbacks, accepts and prefix reuse equals one built from scratch, and the drafter is chosen or refused correctly.
"""

from __future__ import annotations

import ctypes
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import llama_cpp as L
import numpy as np
import pytest
from llama_cpp import llama_cpp_ext

from engine import Engine, GenerationRequest, load_settings
from engine.draft.adaptive import DraftController
from engine.draft.mtp import MtpDrafter
from engine.errors import SettingsError
from engine.prompts import build_prompt
from engine.runtime import KV_TYPES
from tui.bench.lossless import first_divergence, measure_gap_noise

CODE = "def area(width, height):\n    return width * height\n\n"


def _refactor_prompt() -> str:
    source = Path(textwrap.__file__).read_text()
    start = source.index("def dedent(")
    code = source[start : source.index("\ndef ", start + 10)]
    return f"Rewrite this Python function with type hints.\n\n```python\n{code}\n```\n\n```python\n"


PROMPTS = [
    _refactor_prompt(),
    "<|im_start|>user\nWrite a function that adds two numbers.<|im_end|>\n<|im_start|>assistant\n",
    CODE * 3,
]


@pytest.fixture(scope="module")
def engine(qwen35_model: Path) -> Iterator[Engine]:
    # one thread: two shared cores, and results do not depend on it
    made = Engine(load_settings(model=qwen35_model, n_ctx=1024, draft="mtp", threads=1, mtp_vocab=0))  # full head
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def noise(engine: Engine) -> float:
    """This build's batch-versus-step logit noise on the model (measured: 0.0 on CPU so far)."""
    prompt = engine.tokenize(PROMPTS[0])
    return measure_gap_noise(engine, prompt, engine.tokenize(CODE, add_bos=False)[:16])


class _TrustingController(DraftController):
    """Verifies every proposal in full, whatever acceptance and costs say."""

    def best_length(
        self, available: int | None = None, sustained: bool = False, streak: int | None = None
    ) -> int:
        return self.draft_max if available is None else min(self.draft_max, available)


def _drafter(engine: Engine) -> MtpDrafter:
    plan = engine.draft_plan("mtp")
    assert plan is not None
    drafter = plan.sources[0].drafter
    assert isinstance(drafter, MtpDrafter)
    return drafter


def _trust_every_draft(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = engine.draft_plan("mtp")
    assert plan is not None
    monkeypatch.setattr(plan.sources[0], "controller", _TrustingController(engine.settings.draft_max))


def _head_state(drafter: MtpDrafter, history: Sequence[int]) -> np.ndarray:
    """The head's output state for the token after `history` (what its guess and a chained call are made from)."""
    token = drafter.next_token(history)
    assert token is not None, "the head does not follow the target"
    state = drafter.output_state()
    assert state is not None
    return state


def _fresh_head_state(engine: Engine, history: Sequence[int]) -> np.ndarray:
    """The head's state after the target evaluated history[:-1] in plain batches and the head was built anew."""
    drafter = _drafter(engine)
    drafter.reset()
    engine.cache.reset()
    engine.evaluate(history[:-1])
    return _head_state(drafter, history)


def _contexts(engine: Engine) -> tuple[Any, Any]:
    """A bare target context and an MTP context on the engine's model, set up by hand."""
    params = L.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = 1024, 1024, 1024  # any prompt in one call
    params.n_threads = params.n_threads_batch = 1
    params.type_k, params.type_v = KV_TYPES[engine.settings.kv_type_k], KV_TYPES[engine.settings.kv_type_v]
    params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED if engine.settings.flash_attn else 0
    target = L.llama_init_from_model(engine.runtime.model, params)
    params.ctx_type, params.ctx_other = L.LLAMA_CONTEXT_TYPE_MTP, target
    head = L.llama_init_from_model(engine.runtime.model, params)
    assert target and head
    return target, head


def _decode_raw(ctx: Any, tokens: Sequence[int], rows: np.ndarray | None) -> None:
    n_embd = 0 if rows is None else rows.shape[1]
    batch = L.llama_batch_init(len(tokens), n_embd, 1)
    token_array = (L.llama_token * len(tokens))(*tokens)
    if rows is not None:
        batch.token = token_array  # an embeddings batch has no token array of its own
        np.ctypeslib.as_array(batch.embd, shape=rows.shape)[:] = rows
    for i, token in enumerate(tokens):
        batch.token[i] = token
        batch.pos[i], batch.n_seq_id[i], batch.seq_id[i][0] = i, 1, 0
        batch.logits[i] = i == len(tokens) - 1
    batch.n_tokens = len(tokens)
    try:
        assert L.llama_decode(ctx, batch) == 0
    finally:
        if rows is not None:
            batch.token = ctypes.POINTER(L.llama_token)()
        L.llama_batch_free(batch)


@pytest.mark.parametrize("text", [PROMPTS[1], PROMPTS[0] * 2], ids=["short", "two-batches"])
def test_head_reads_each_token_with_the_hidden_state_before_it(engine: Engine, text: str) -> None:
    """Against a by-hand reference in one call: the head's entry at p is (x_p, h_{p-1}), zeros before the first
    token; the engine evaluates a long prompt in 512-token calls (the first without logits), the head likewise."""
    prompt = engine.tokenize(text)
    assert len(prompt) < 1000 and (text == PROMPTS[1] or len(prompt) > engine.runtime.batch_capacity)
    n_embd, n_vocab = L.llama_model_n_embd(engine.runtime.model), engine.runtime.n_vocab
    target, head = _contexts(engine)
    last = len(prompt)  # the head's row for the token after the prompt
    try:
        llama_cpp_ext.llama_set_embeddings_nextn(target, True, False)
        llama_cpp_ext.llama_set_embeddings_nextn(head, True, False)
        _decode_raw(target, prompt, None)
        first = int(np.ctypeslib.as_array(L.llama_get_logits_ith(target, -1), shape=(n_vocab,)).argmax())
        hidden = np.ctypeslib.as_array(llama_cpp_ext.llama_get_embeddings_nextn(target), shape=(len(prompt), n_embd))
        rows = np.concatenate([np.zeros((1, n_embd), np.float32), hidden]).astype(np.float16).astype(np.float32)
        _decode_raw(head, [*prompt, first], rows)
        expected = np.ctypeslib.as_array(llama_cpp_ext.llama_get_embeddings_nextn_ith(head, last), shape=(n_embd,))
        expected = expected.copy()
        guess = int(np.ctypeslib.as_array(L.llama_get_logits_ith(head, -1), shape=(n_vocab,)).argmax())
        # the same with each token paired with its own state: a different head input, to show the check bites
        L.llama_memory_clear(L.llama_get_memory(head), True)
        _decode_raw(head, [*prompt, first], np.concatenate([rows[1:], rows[-1:]]))
        misaligned = np.ctypeslib.as_array(llama_cpp_ext.llama_get_embeddings_nextn_ith(head, last), shape=(n_embd,))
        misaligned = misaligned.copy()
    finally:
        L.llama_free(head)
        L.llama_free(target)
    ours = _fresh_head_state(engine, [*prompt, first])
    assert np.abs(ours - expected).max() <= 1e-3
    assert np.abs(ours - misaligned).max() > 0.1
    # the device's greedy choice is the host's argmax of the same call
    drafter = _drafter(engine)
    assert drafter.device_greedy
    assert drafter.next_token([*prompt, first]) == guess


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_greedy_mtp_drafting_is_lossless(
    engine: Engine, noise: float, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = PROMPTS[index]
    plain = engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="none"))
    # at this acceptance the real controller soon stops drafting; verify every draft instead
    _trust_every_draft(engine, monkeypatch)
    drafted = engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="mtp"))
    assert drafted.stats.drafter == "mtp"
    assert drafted.stats.draft_steps > 20  # drafts were verified (and, at this acceptance, rolled back)
    split = first_divergence(engine, engine.tokenize(prompt), plain.tokens, drafted.tokens)
    if noise == 0.0:
        assert drafted.tokens == plain.tokens and drafted.text == plain.text
    elif split is not None:
        assert abs(split.plain_gap) < noise, f"parted at token {split.position}, gap {split.plain_gap:.4f}"


def test_head_memory_after_accepts_and_rollbacks_matches_a_fresh_build(
    engine: Engine, noise: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drafts come from the head, then are replaced by the plain answer (accepted) with a wrong tail (rejected),
    so every path of the bookkeeping runs: multi-row catch-up, chained entries removed, rollbacks of 1..3."""
    prompt = engine.tokenize(PROMPTS[2])
    plain = engine.complete(GenerationRequest(PROMPTS[2], max_tokens=40, drafter="none")).tokens
    drafter = _drafter(engine)
    real_propose = drafter.propose
    steps: list[int] = []

    def oracle(history: Sequence[int], limit: int) -> list[int]:
        real_propose(history, limit)  # the head drafts and cleans up after itself as usual
        done = len(history) - len(prompt)
        good = list(plain[done : done + 1 + len(steps) % 3])
        steps.append(len(good))
        return [*good, plain[done + len(good)] ^ 1][:limit] if done + len(good) < len(plain) else good[:limit]

    monkeypatch.setattr(drafter, "propose", oracle)
    _trust_every_draft(engine, monkeypatch)
    run = engine.complete(GenerationRequest(PROMPTS[2], max_tokens=40, drafter="mtp"))
    monkeypatch.undo()
    assert run.tokens == plain
    assert 0 < run.stats.draft_accepted < run.stats.draft_proposed
    history = [*engine.cache.tokens, 42]  # what the target holds (a draft may run past the answer), then any token
    live_token = drafter.next_token(history)
    live = _head_state(drafter, history)
    fresh = _fresh_head_state(engine, history)
    assert np.abs(live - fresh).max() <= max(noise, 1e-3)
    assert live_token == drafter.next_token(history)
    # the comparison has teeth: one different early token changes the head's view
    other = list(history)
    other[len(prompt) + 2] ^= 1
    assert np.abs(_fresh_head_state(engine, other) - fresh).max() > 0.1


def test_rollback_then_next_token_logits_match_a_plain_run(engine: Engine, noise: float) -> None:
    runtime, cache, drafter = engine.runtime, engine.cache, _drafter(engine)
    prompt = engine.tokenize(PROMPTS[1])
    kept = engine.tokenize(CODE, add_bos=False)[:3]
    junk = engine.tokenize(" banana orchard", add_bos=False)

    def step(tokens: list[int], keep: int) -> None:
        runtime.decode(tokens, len(cache.tokens), len(tokens))
        engine.notify_decode(tokens, keep)
        cache.extend(tokens)

    drafter.reset()
    cache.reset()
    engine.evaluate(prompt)
    for token in kept:
        step([token], 1)
    reference = runtime.logits(1)[0].copy()
    reference_head = _head_state(drafter, [*prompt, *kept, 42])

    cache.reset()
    engine.evaluate(prompt)
    _head_state(drafter, [*prompt, kept[0]])  # the head has drafted from here: its memory is ahead
    batch = kept[:-1] + junk
    step(batch, len(kept) - 1)
    assert cache.rollback(len(prompt) + len(kept) - 1)
    step([kept[-1]], 1)
    after = runtime.logits(1)[0]
    delta = after - reference
    assert float(delta.max() - delta.min()) <= noise
    assert int(after.argmax()) == int(reference.argmax())
    head = _head_state(drafter, [*prompt, *kept, 42])
    assert np.abs(head - reference_head).max() <= max(noise, 1e-3)
    cache.reset()


def test_switching_task_prefixes_keeps_the_head_exact(engine: Engine, noise: float) -> None:
    """The target restores a task prefix from a snapshot; the head finds that prefix's rows in its archive."""
    drafter = _drafter(engine)
    drafter.reset()
    engine.cache.reset()
    system_a = "You explain code briefly and precisely. " * 6
    system_b = "You fix bugs and answer with a diff. " * 6
    asks = [(system_a, "What does area do?"), (system_b, "Fix area."), (system_a, "Explain area again.")]
    done = None
    for system, question in asks:
        built = build_prompt(engine.info, system, question)
        request = GenerationRequest(built.text, max_tokens=12, drafter="mtp", prefix_chars=built.prefix_chars)
        done = engine.complete(request)
    assert done is not None
    assert done.stats.prompt_tokens_evaluated < done.stats.prompt_tokens // 2  # the prefix came from a snapshot
    assert drafter.unseen_rows == 0
    history = [*engine.tokenize(built.text), *done.tokens]
    live = _head_state(drafter, history)
    fresh = _fresh_head_state(engine, history)
    assert np.abs(live - fresh).max() <= max(noise, 1e-3)


def test_auto_is_long_ngram_matches_then_the_mtp_head(qwen35_model: Path) -> None:
    auto = Engine(load_settings(model=qwen35_model, n_ctx=512, draft="auto", threads=1))
    try:
        assert auto.runtime.config.load_mtp
        done = auto.complete(GenerationRequest(CODE, max_tokens=4))
        assert done.stats.drafter == "ngram+mtp"
        plan = auto.draft_plan("auto")
        assert plan is not None
        assert [(s.name, s.costly, s.min_tokens) for s in plan.sources] == [("ngram", False, 4), ("mtp", True, 1)]
        assert plan.sources[1].drafter is _drafter(auto)  # one head, whichever plan drafts with it
        assert plan.sources[0].controller.cost is plan.sources[1].controller.cost is auto.costs
    finally:
        auto.close()


def test_mtp_needs_the_head_loaded(qwen35_model: Path) -> None:
    plain = Engine(load_settings(model=qwen35_model, n_ctx=512, draft="ngram", threads=1))
    try:
        with pytest.raises(SettingsError, match="loaded without its MTP layer"):
            plain.complete(GenerationRequest(CODE, max_tokens=4, drafter="mtp"))
    finally:
        plain.close()


def test_drafting_off_leaves_recurrent_memory_without_rollback_slots(qwen35_model: Path) -> None:
    """Each rollback slot costs every decode step a copy of the recurrent state, so none are made for no drafts."""
    plain = Engine(load_settings(model=qwen35_model, n_ctx=512, draft="none", threads=1))
    try:
        assert plain.runtime.rollback_slots == 0 and not plain.can_draft
        assert plain.complete(GenerationRequest(CODE, max_tokens=4, drafter="auto")).stats.drafter == "none"
        with pytest.raises(SettingsError, match="drafting was off when the model loaded"):
            plain.complete(GenerationRequest(CODE, max_tokens=4, drafter="ngram"))
    finally:
        plain.close()


def test_mtp_on_the_default_model_is_a_clear_settings_error(real_engine: Any) -> None:
    with pytest.raises(SettingsError, match="has no MTP") as raised:
        real_engine.complete(GenerationRequest("def f():\n", max_tokens=4, drafter="mtp"))
    assert "\n" not in str(raised.value)


# --- the frequency-ranked head (engine/draft/head_trim.py) ---------------------------------------------------------
RANKED = 100_000  # the code prompts' tokens are all kept; a random head's guesses fall on both sides


@pytest.fixture(scope="module")
def ranked(qwen35_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QCODE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))  # the derived head goes here
        made = Engine(load_settings(model=qwen35_model, n_ctx=1024, draft="mtp", threads=1, mtp_vocab=RANKED))
    try:
        yield made
    finally:
        made.close()


def test_ranked_head_guesses_what_the_full_head_guesses_among_its_tokens(engine: Engine, ranked: Engine) -> None:
    """Same rows, same sums: where the full head's guess is a kept token the ranked head makes it too; elsewhere
    it guesses another kept token or nothing (-1: its "other" entry). The kept tokens are ranked by their counts
    in code first (head_trim.ranked_tokens): not simply the lowest ids."""
    kept_ids = _drafter(ranked).head_tokens
    assert kept_ids is not None and _drafter(ranked).head_vocab == RANKED + 1 == len(kept_ids) + 1
    kept = set(kept_ids.tolist())
    assert len(kept) == RANKED and max(kept) >= RANKED  # frequent tokens beyond the first 100,000 ids are kept
    prompt = engine.tokenize(PROMPTS[0])
    assert set(prompt) <= kept
    inside = outside = 0
    for end in range(40, len(prompt), max(1, (len(prompt) - 40) // 6)):
        history = prompt[:end]
        full = _fresh_guess(engine, history)
        ours = _fresh_guess(ranked, history)
        if full in kept:
            inside += 1
            assert ours == full, f"at {end}: the ranked head guessed {ours}, the full head {full}"
        else:
            outside += 1
            assert ours == -1 or ours in kept
    assert inside and outside  # both cases were checked


def test_heads_of_replaced_model_files_are_deleted(tmp_path: Path) -> None:
    """A derived head is as large as the model's MTP block: those of an earlier version of the model file (another
    size or time) and of the older top<N> naming go once a head is derived; this version's heads of other sizes and
    other models' heads stay."""
    from engine.draft.head_trim import remove_stale_heads

    names = {
        "m-7-100-200-rank32768.gguf": True, "m-7-100-200-rank32768.tokens.npy": True,  # the one just derived
        "m-7-100-200-rank8192.gguf": True, "m-7-100-200-rank8192.tokens.npy": True,  # another size, same version
        "m-7-100-199-rank32768.gguf": False, "m-7-100-199-rank32768.tokens.npy": False,  # an earlier version
        "m-7-100-200-top8192.gguf": False,  # the older naming
        "m-100-200-rank32768.gguf": True, "m-7b-1-2-rank8192.gguf": True,  # other models
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_heads(tmp_path / "m-7-100-200-rank32768.gguf")
    assert sorted(p.name for p in removed) == sorted(name for name, kept in names.items() if not kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, kept in names.items() if kept)


def _fresh_guess(engine: Engine, history: Sequence[int]) -> int:
    drafter = _drafter(engine)
    drafter.reset()
    engine.cache.reset()
    engine.evaluate(history[:-1])
    token = drafter.next_token(history)
    assert token is not None
    return token


def test_ranked_head_drafting_is_lossless(ranked: Engine, noise: float, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = PROMPTS[2]
    plain = ranked.complete(GenerationRequest(prompt, max_tokens=24, drafter="none"))
    head_tokens = _drafter(ranked).head_tokens
    assert head_tokens is not None and not set(plain.tokens) <= set(head_tokens.tolist())  # tokens it does not know
    _trust_every_draft(ranked, monkeypatch)
    drafted = ranked.complete(GenerationRequest(prompt, max_tokens=24, drafter="mtp"))
    assert drafted.stats.draft_steps > 3
    if noise == 0.0:
        assert drafted.tokens == plain.tokens
    else:
        split = first_divergence(ranked, ranked.tokenize(prompt), plain.tokens, drafted.tokens)
        assert split is None or abs(split.plain_gap) < noise


def test_a_cache_that_cannot_be_written_leaves_the_full_head(
    qwen35_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranked head is the default and is derived into the cache: where that cannot be written (a read-only
    home), the full head drafts the same tokens, only slower, and nothing stops."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("QCODE_CACHE_DIR", str(blocked))
    engine = Engine(load_settings(model=qwen35_model, n_ctx=512, draft="mtp", threads=1))
    try:
        done = engine.complete(GenerationRequest(CODE, max_tokens=8, drafter="mtp"))
        drafter = _drafter(engine)
        assert done.stats.drafter == "mtp" and drafter.head_tokens is None and drafter.head_vocab == drafter.n_vocab
    finally:
        engine.close()
