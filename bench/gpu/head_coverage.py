"""How much of code text a frequency-ranked MTP head can draft: the share of tokens among the N it keeps.

A ranked head (settings' mtp_vocab, engine/draft/head_trim.py) guesses only among N tokens (head_trim.ranked_tokens:
half the most frequent in a sample of the standard library, half the lowest ids); a token outside is never drafted,
and the head reads a zero embedding for it. So the share of a text's tokens it keeps bounds the head's acceptance
from above, relative to the full head. Reported for the shipped ranking and for the lowest ids alone.

    python -m bench.gpu.head_coverage MODEL.gguf [FILES...]   (default: the Python standard library's own modules)
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from engine.draft.head_trim import ranked_tokens

SIZES = (8192, 16384, 32768, 65536)


def tokenize(vocab: object, text: str) -> list[int]:
    raw = text.encode()
    room = len(raw) + 16
    out = (llama_cpp.llama_token * room)()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), out, room, False, False)
    return list(out[: max(n, 0)])


def read(vocab: object, files: Sequence[Path]) -> np.ndarray:
    return np.concatenate([np.asarray(tokenize(vocab, f.read_text(errors="replace")), np.int64) for f in files])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.head_coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a GGUF (only its vocabulary is read)")
    parser.add_argument("files", type=Path, nargs="*")
    parser.add_argument("--limit", type=int, default=200, help="default files: this many stdlib modules")
    parser.add_argument("--counts", action="store_true", help="also a ranking by counts (slow: ~20M tokens)")
    args = parser.parse_args(argv)
    files = args.files or sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[: args.limit]
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(args.model).encode(), params)
    if not model:
        print(f"error: could not read the vocabulary of {args.model}", file=sys.stderr)
        return 1
    vocab = llama_cpp.llama_model_get_vocab(model)
    ids = read(vocab, files)
    n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
    shipped = {n: ranked_tokens(lambda text: tokenize(vocab, text), n_vocab, n) for n in SIZES}
    result = {"files": len(files), "tokens": int(ids.size), "n_vocab": n_vocab,
              "share_kept": {n: round(float(np.isin(ids, kept).mean()), 4) for n, kept in shipped.items()},
              "share_below": {n: round(float((ids < n).mean()), 4) for n in SIZES}}
    if args.counts:
        modules = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
        counts = np.bincount(read(vocab, modules[::2]), minlength=result["n_vocab"])
        order = np.lexsort((np.arange(counts.size), -counts))
        held_out = read(vocab, modules[1::2])
        result["by_counts"] = {"counted_tokens": int(counts.sum()), "share_covered": {
            n: {"files": round(float(np.isin(ids, order[:n]).mean()), 4),
                "stdlib_held_out": round(float(np.isin(held_out, order[:n]).mean()), 4)} for n in SIZES}}
    llama_cpp.llama_model_free(model)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
