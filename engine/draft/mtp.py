"""Drafting with the model's own MTP (NextN) head, driven the way llama.cpp drives it.

The head is one extra decoder block. At position p it reads the token x_p with the target's hidden state h_{p-1}
(the trunk's last output after the final norm, for the token before) and predicts x_{p+1}. It lives in its own
llama.cpp context (LLAMA_CONTEXT_TYPE_MTP) with its own attention memory, one entry per position the target holds.
A draft chains the head: each drafted token goes back in with the head's own output state.

Staying consistent with the target: the engine hands every target decode call to `after_decode`, which copies the
hidden rows of the tokens that stay (all of a prompt chunk, the accepted part of a verified draft). The head's memory
is then a pure function of (tokens, rows), so it is brought up to date lazily when a draft is asked for: keep the
longest prefix whose tokens still match, decode the rest. Rollbacks, recomputes and prefix reuse across requests all
reduce to that. Rows of a sequence the target moved away from are archived, so a task prefix the target restores
from a snapshot finds its rows again. Rows the drafter never saw (the target restored state it had built before the
drafter existed) are filled with zeros: drafts get worse there, outputs do not change.

On a GPU a head call is mostly overhead, not weight traffic (bench/gpu/RESULTS.md), so:
- the head's greedy choice is made on the device (a backend greedy sampler): no 248,320-float logits row is copied
  and scanned on the host per drafted token;
- every call of a proposal has one form: `width` rows (the draft length plus one, the longest catch-up) with the
  output at the last. A call that has fewer new entries to make re-makes the entries just before them from the
  same inputs (removed first, identical after). llama.cpp reuses a graph only for the same rows, outputs and
  output places (with a backend sampler), and its CUDA backend replays a captured graph only for a reused one:
  alternating forms (catch-up of m rows, then single rows) rebuild and relaunch every call;
- a draft is the length asked for: the controller chose it, and the verify call keeps its shape (and its graph)
  only if every draft has that length.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp import llama_cpp_ext

from .. import llama_log
from ..cache import common_prefix
from ..errors import GenerationError, ModelError, SettingsError
from ..runtime import KV_TYPES, MTP_MAX_DRAFT
from .base import Drafter, DraftHost

# Chained steps go beyond what the head was trained for (one step ahead), so depth is capped; a `--draft mtp` model
# gets rollback slots for this many drafted tokens only (each slot costs every decode step).
MAX_DEPTH = MTP_MAX_DRAFT
# Past sequences whose rows are kept, and the shortest one worth keeping.
MAX_ARCHIVED = 4
MIN_ARCHIVED = 32

Rows = npt.NDArray[np.float16]


class _History:
    """Target tokens with the hidden row of each (float16: they only steer drafts, never the output)."""

    def __init__(self, n_embd: int, tokens: Sequence[int] = (), rows: Rows | None = None) -> None:
        self.tokens: list[int] = list(tokens)
        capacity = max(64, len(self.tokens))
        self.rows: Rows = np.zeros((capacity, n_embd), np.float16)
        if rows is not None:
            self.rows[: len(self.tokens)] = rows[: len(self.tokens)]

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, tokens: Sequence[int], rows: npt.NDArray[Any] | None) -> None:
        """Append tokens with their rows (None: unknown, zeros)."""
        start, end = len(self.tokens), len(self.tokens) + len(tokens)
        if end > len(self.rows):
            grown = np.zeros((max(end, 2 * len(self.rows)), self.rows.shape[1]), np.float16)
            grown[:start] = self.rows[:start]
            self.rows = grown
        self.rows[start:end] = 0.0 if rows is None else rows
        self.tokens.extend(tokens)

    def prefix(self, length: int) -> _History:
        return _History(self.rows.shape[1], self.tokens[:length], self.rows)


class MtpDrafter(Drafter):
    name = "mtp"
    max_draft = MAX_DEPTH

    def __init__(self, host: DraftHost) -> None:
        target = host.runtime
        if not target.config.load_mtp:
            raise SettingsError(
                f"--draft mtp: {host.info.path.name} was loaded without its MTP layer; "
                "start qcode with --draft mtp or --draft auto"
            )
        self.target = target
        self.n_embd = int(llama_cpp.llama_model_n_embd(target.model))
        self.n_vocab = target.n_vocab
        self.n_ctx = target.n_ctx
        self.capacity = target.batch_capacity
        self.width = 1  # rows of every call of a proposal: the last draft length asked for, plus one
        config = target.config
        # a frequency-ranked head (head_trim.py): its own MTP-only model whose vocabulary is the top N tokens
        self._head_model: Any = None
        self.head_vocab = self.n_vocab
        self._to_head: npt.NDArray[np.int32] | None = None  # token id -> head row (N: any token not kept)
        self.head_tokens: npt.NDArray[np.int32] | None = None  # a ranked head's row -> token id
        n_keep = host.settings.mtp_vocab
        ranked = _load_head(host, n_keep) if 0 < n_keep < self.n_vocab - 1 else None
        if ranked is not None:
            self._head_model, kept = ranked
            self.head_vocab = len(kept) + 1
            self.head_tokens = kept
            self._to_head = np.full(self.n_vocab, len(kept), np.int32)
            self._to_head[kept] = np.arange(len(kept), dtype=np.int32)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = target.n_ctx
        params.n_batch = params.n_ubatch = self.capacity
        params.n_seq_max = 1
        params.n_rs_seq = 0
        params.n_outputs_max = 1  # one logits row per call: the next draft token
        params.ctx_type = llama_cpp.LLAMA_CONTEXT_TYPE_MTP
        params.ctx_other = target.ctx
        threads = int(llama_cpp.llama_n_threads(target.ctx))
        params.n_threads = params.n_threads_batch = threads
        params.type_k, params.type_v = KV_TYPES[config.kv_type_k], KV_TYPES[config.kv_type_v]
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if config.flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.no_perf = True
        llama_log.clear_recent()
        ctx = llama_cpp.llama_init_from_model(self._head_model or target.model, params)
        if not ctx:
            self._free_head_model()
            raise ModelError(f"could not create the MTP draft context: {llama_log.recent_errors() or 'no detail'}")
        self.ctx = ctx
        self.memory = llama_cpp.llama_get_memory(ctx)
        # Unmasked: a hidden row for every token of a call, indexed by its place in the batch.
        llama_cpp_ext.llama_set_embeddings_nextn(target.ctx, True, False)
        llama_cpp_ext.llama_set_embeddings_nextn(ctx, True, False)
        self._batch = llama_cpp.llama_batch_init(self.capacity, self.n_embd, 1)
        # a batch made for embeddings has no token array; the head wants both (llama.cpp reads h from embd)
        self._tokens = (llama_cpp.llama_token * self.capacity)()
        self._batch.token = self._tokens
        self._embd = np.ctypeslib.as_array(self._batch.embd, shape=(self.capacity, self.n_embd))
        self.history = _History(self.n_embd)
        self._archive: list[_History] = []
        self._kv_tokens: list[int] = []  # the head's memory: entry p was made from (x_p, h_{p-1})
        self._last_row = 0  # batch index of the head's latest output
        self.unseen_rows = 0  # rows filled with zeros: a measure of degraded drafting
        self._closed = False
        # the greedy choice on the device; where the backend cannot take it, logits rows come to the host
        self._sampler = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self._sampler, llama_cpp.llama_sampler_init_greedy())
        self.device_greedy = bool(llama_cpp.llama_set_sampler(ctx, 0, self._sampler))

    # --- following the target ---------------------------------------------------------------------
    def after_decode(self, held: Sequence[int], tokens: Sequence[int], kept: int) -> None:
        """The target just decoded `tokens` after the `held` ones it holds; the first `kept` of them stay."""
        self._align(held)
        pointer = llama_cpp_ext.llama_get_embeddings_nextn(self.target.ctx)
        if not pointer:
            raise GenerationError("internal error: the target gave no hidden states for the MTP head")
        self.history.extend(tokens[:kept], np.ctypeslib.as_array(pointer, shape=(kept, self.n_embd)))

    def _align(self, held: Sequence[int]) -> None:
        """Make the history hold exactly the target's tokens `held`, with rows for each."""
        history = self.history
        if len(history) == len(held) and history.tokens == held:
            return
        shared = common_prefix(history.tokens, held)
        if shared < len(held):  # the target restored state from an earlier sequence: look for its rows
            best, best_shared = None, shared
            for old in self._archive:
                n = common_prefix(old.tokens, held)
                if n > best_shared:
                    best, best_shared = old, n
            if best is not None:
                self._archive.remove(best)
                self._keep(history)
                self.history = history = best
                shared = best_shared
        if shared < len(history):
            self._keep(history)
            self.history = history = history.prefix(shared)
        if shared < len(held):
            history.extend(held[shared:], None)
            self.unseen_rows += len(held) - shared

    def _keep(self, history: _History) -> None:
        if len(history) < MIN_ARCHIVED:
            return
        self._archive = [
            old for old in self._archive if common_prefix(old.tokens, history.tokens) < len(old)
        ]
        self._archive.append(history)
        while len(self._archive) > MAX_ARCHIVED:
            self._archive.pop(0)

    def reset(self) -> None:
        """Forget every row and the head's memory."""
        llama_cpp.llama_memory_clear(self.memory, True)
        self._kv_tokens = []
        self.history = _History(self.n_embd)
        self._archive = []

    # --- the Drafter protocol -----------------------------------------------------------------------
    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        pass  # the head follows the target through after_decode; nothing is per request

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        """Chain the head from the last token of `history` (the one the target has not decoded yet): `limit`
        tokens (at most MAX_DEPTH), every call `limit` + 1 rows wide."""
        limit = min(limit, MAX_DEPTH, self.n_ctx - len(history) - 1)
        if limit <= 0:
            return []
        self.width = limit + 1
        token = self.next_token(history)
        if token is None or token < 0:
            return []
        last = len(history) - 1
        draft = [token]
        chained: list[tuple[int, npt.NDArray[np.float32]]] = []  # entries last + 1, ...: (token, head state)
        try:
            while len(draft) < limit:
                # the head's own output state stands in for the target's at the drafted position
                hidden = self.output_state()
                if hidden is None:
                    break
                chained.append((token, hidden))
                token = self._make_entries(history, last + len(chained), chained)
                if token < 0:  # a guess outside a ranked head's vocabulary
                    break
                draft.append(token)
        finally:
            # forget the chained entries; the entry of the last token stays (the target will decode that token)
            llama_cpp.llama_memory_seq_rm(self.memory, 0, last + 1, -1)
        return draft

    def observe(self, proposed: int, accepted: int) -> None:
        pass  # how much to draft is the controller's business (engine/draft/plan.py pauses costly drafters)

    def next_token(self, history: Sequence[int]) -> int | None:
        """The head's greedy guess for the token after `history`, its memory brought up to date first (in one call
        where the entries to make fit its width).

        None when the history does not follow what the target decoded (the engine reset it behind our back).
        """
        last = len(history) - 1
        rows = self.history
        if last < 0 or len(rows) != last or rows.tokens[-16:] != list(history[max(0, last - 16) : last]):
            return None
        valid = min(common_prefix(self._kv_tokens, history[: last + 1]), last)
        # entries before the last call's window are made in chunks without an output
        for start in range(valid, last + 1 - self.width, self.capacity):
            end = min(start + self.capacity, last + 1 - self.width)
            self._decode(*self._inputs(history, start, end, []), start, want_token=False)
            self._kv_tokens[start:] = history[start:end]
            valid = end
        token = self._make_entries(history, last, [], first=min(valid, last))
        self._kv_tokens[valid:] = history[valid : last + 1]
        return token

    def _make_entries(self, history: Sequence[int], end: int, chained: Sequence[tuple[int, Any]],
                      first: int | None = None) -> int:
        """(Re)make the head's entries up to position `end`, `width` of them where the context allows (from `first`
        if more are new), and return its guess at `end`."""
        start = max(0, end + 1 - self.width)
        if first is not None:
            start = min(start, first)
        return self._decode(*self._inputs(history, start, end + 1, chained), start)

    def _inputs(self, history: Sequence[int], start: int, end: int,
                chained: Sequence[tuple[int, Any]]) -> tuple[list[int], npt.NDArray[Any]]:
        """Tokens and hidden rows of entries start .. end - 1: entry p reads x_p with h_{p-1} (zeros before the
        first token); past the history's last token, the chained (token, head state) pairs."""
        last = len(history) - 1
        known = min(end, last + 1)
        tokens = list(history[start:known])
        if start == 0:
            rows = np.concatenate([np.zeros((1, self.n_embd), np.float16), self.history.rows[: known - 1]])
        else:
            rows = self.history.rows[start - 1 : known - 1]
        if end <= last + 1:
            return tokens, rows
        extra = chained[max(start - last - 1, 0) : end - last - 1]
        tokens += [t for t, _ in extra]
        return tokens, np.concatenate([rows.astype(np.float32), np.stack([h for _, h in extra])])

    def output_state(self) -> npt.NDArray[np.float32] | None:
        """The head's output state (h_nextn) for its latest guess: the input of a chained call."""
        pointer = llama_cpp_ext.llama_get_embeddings_nextn_ith(self.ctx, self._last_row)
        if not pointer:
            return None
        return np.ctypeslib.as_array(pointer, shape=(self.n_embd,)).copy()

    def _decode(
        self, tokens: Sequence[int], hidden: npt.NDArray[Any], start: int, want_token: bool = True
    ) -> int:
        """One head call making the entries at start..start + len(tokens) - 1 (any already there are removed
        first); returns its greedy guess after the last one (-1 without `want_token`)."""
        batch = self._batch
        count = len(tokens)
        llama_cpp.llama_memory_seq_rm(self.memory, 0, start, -1)
        self._embd[:count] = hidden
        ids = tokens if self._to_head is None else self._to_head[np.asarray(tokens, np.int64)].tolist()
        for i in range(count):
            self._tokens[i] = ids[i]
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = want_token and i == count - 1
        batch.n_tokens = count
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            raise GenerationError(f"MTP draft decode failed ({status}): {llama_log.recent_errors()}")
        self._last_row = count - 1
        if not want_token:
            return -1
        if self.device_greedy:
            guess = int(llama_cpp.llama_get_sampled_token_ith(self.ctx, count - 1))
        else:
            pointer = llama_cpp.llama_get_logits_ith(self.ctx, count - 1)
            guess = int(np.ctypeslib.as_array(pointer, shape=(self.head_vocab,)).argmax())
        if self.head_tokens is None:
            return guess
        # a ranked head's entry N stands for every other token: no guess (-1)
        return int(self.head_tokens[guess]) if guess < self.head_vocab - 1 else -1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        llama_cpp_ext.llama_set_embeddings_nextn(self.target.ctx, False, False)
        self._batch.token = ctypes.POINTER(llama_cpp.llama_token)()  # ours, not the batch's to free
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_sampler_free(self._sampler)  # after the context that used it
        self._free_head_model()

    def _free_head_model(self) -> None:
        if self._head_model is not None:
            llama_cpp.llama_model_free(self._head_model)
            self._head_model = None


def _load_head(host: DraftHost, n_keep: int) -> tuple[Any, npt.NDArray[np.int32]] | None:
    """The target's head restricted to `n_keep` frequent tokens (head_trim.ranked_tokens), derived once and cached
    beside the models, and its token ids (row i is token ids[i]); None where the cache cannot be written (the full
    head drafts the same tokens, only slower: nothing to stop for)."""
    from ..settings import cache_dir
    from .head_trim import (
        derive_head,
        head_path,
        load_tokens,
        ranked_tokens,
        remove_stale_heads,
        save_tokens,
        tokens_path,
    )

    path = head_path(cache_dir() / "mtp-heads", host.info.path, n_keep)
    kept = load_tokens(tokens_path(path)) if path.exists() else None
    if kept is None:
        runtime = host.runtime
        ranked = ranked_tokens(lambda text: runtime.tokenize(text, add_bos=False, special=False), runtime.n_vocab,
                               n_keep)
        try:
            derive_head(host.info.path, path, ranked)
            save_tokens(tokens_path(path), ranked)  # after the head: a head without its ids is derived again
        except OSError:
            return None
        remove_stale_heads(path)
        kept = np.asarray(ranked, np.int32)
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = host.runtime.config.gpu_layers if host.runtime.config.gpu_layers >= 0 else 999
    mparams.load_mtp = True
    llama_log.clear_recent()
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise ModelError(f"could not load the ranked MTP head {path}: {llama_log.recent_errors() or 'no detail'}")
    return model, kept
