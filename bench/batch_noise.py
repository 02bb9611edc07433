"""Batch-vs-step logit noise: decode k tokens in one batch, then the same tokens one at a time.

A draft verifier compares the target's batched logits against what plain decoding would have
produced; where the two differ, greedy output with drafting can part from greedy output without it.
This prints, per position, the largest logit difference between the two ways, and how large the
top-1/top-2 gaps are (a difference smaller than every gap can never flip the argmax).

    python bench/batch_noise.py MODEL.gguf [--kv q8_0] [--k 16] [--depth 0] [--threads 1]
                                [--no-fa] [--no-repack] [--no-tiled]

On x86 with llama.cpp as vendored in llama-cpp-python 0.3.36, `--no-repack --no-tiled` makes the
two ways bit-identical for Q4_K_S Gemma 3 with a q8_0 KV cache: the kernels left (ggml vec_dot per
row, llamafile's tinyBLAS for Q8_0/Q5_0/Q4_0) sum each dot product in the same order as one row.
An f16/f32 KV cache breaks it again at batches of 64+ (tiled flash attention) and, with several
threads, at 512+ cached tokens (split-KV single-token attention); F16 weights never match.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.runtime import KV_TYPES, Runtime, RuntimeConfig

PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
CONTINUATION = (
    "    if n <= 1:\n        return 0\n    elif n == 2:\n        return 1\n"
    "    elif n == 3:\n        return 1\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n\n\ndef factorial(n: int) -> int:\n"
    '    """Return n! for a non-negative integer n."""\n    result = 1\n'
    "    for i in range(2, n + 1):\n        result *= i\n    return result\n"
)
# Filler for --depth: unrelated code that pushes the measured tokens deeper into the context.
FILLER = "import os\nimport sys\n\n\ndef main(argv: list[str]) -> int:\n    return len(argv)\n\n"


def load(path: Path, args: argparse.Namespace) -> Runtime:
    config = RuntimeConfig(
        n_ctx=512 + args.depth + args.k, n_batch=max(512, args.k),
        kv_type_k=args.kv, kv_type_v=args.kv, flash_attn=not args.no_fa,
        gpu_layers=-1, threads=args.threads,
    )
    if not args.no_repack:
        return Runtime(path, config)
    # Runtime has no switch for weight repacking; patch the default params for this one load.
    original = llama_cpp.llama_model_default_params

    def without_repack() -> llama_cpp.llama_model_params:
        params = original()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_model_default_params = without_repack
    try:
        return Runtime(path, config)
    finally:
        llama_cpp.llama_model_default_params = original


def measure(rt: Runtime, k: int, depth: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(batch logits, step logits, batch seconds, seconds per step) for k tokens after a prompt."""
    prompt = rt.tokenize(PROMPT)
    if depth:
        filler = rt.tokenize(FILLER, add_bos=False)
        padding = (filler * (depth // len(filler) + 1))[:depth]
        prompt = prompt[:1] + padding + prompt[1:]
    tokens = rt.tokenize(CONTINUATION, add_bos=False)
    if len(tokens) < k:
        raise SystemExit(f"the continuation has only {len(tokens)} tokens: use --k {len(tokens)}")
    tokens = tokens[:k]
    for at in range(0, len(prompt), rt.batch_capacity):
        rt.decode(prompt[at : at + rt.batch_capacity], at, 1)
    start = len(prompt)
    began = time.perf_counter()
    rt.decode(tokens, start, k)
    batch_s = time.perf_counter() - began
    batch = rt.logits(k).copy()
    rt.remove_from(start)
    step = np.empty_like(batch)
    began = time.perf_counter()
    for i, token in enumerate(tokens):
        rt.decode([token], start + i, 1)
        step[i] = rt.logits(1)[0]
    step_s = (time.perf_counter() - began) / k
    rt.clear()
    return batch, step, batch_s, step_s


def top2_gap(logits: np.ndarray) -> np.ndarray:
    top = np.partition(logits, -2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--kv", default="q8_0", choices=sorted(KV_TYPES))
    parser.add_argument("--k", type=int, default=16, help="tokens in the batch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--depth", type=int, default=0, help="filler tokens before the prompt")
    parser.add_argument("--no-fa", action="store_true", help="flash attention off")
    parser.add_argument("--no-repack", action="store_true", help="no CPU weight repacking")
    parser.add_argument(
        "--no-tiled", action="store_true", help="GGML_CPU_TILED_MM=0: no tiled K-quant batch matmul"
    )
    args = parser.parse_args()
    if args.no_tiled:
        os.environ["GGML_CPU_TILED_MM"] = "0"  # ggml reads it once, at the first matmul

    rt = load(args.model, args)
    try:
        first, _, _, _ = measure(rt, args.k, args.depth)  # also warms up
        batch, step, batch_s, step_s = measure(rt, args.k, args.depth)
    finally:
        rt.close()
    repeatable = bool(np.array_equal(first, batch))
    diff = np.abs(batch - step).max(axis=1)
    gaps = top2_gap(step)
    same_argmax = batch.argmax(axis=1) == step.argmax(axis=1)
    spread = float(np.median(step.max(axis=1) - step.min(axis=1)))
    flags = f"kv={args.kv} k={args.k} depth={args.depth} threads={args.threads} "
    flags += f"fa={not args.no_fa} repack={not args.no_repack} tiled={not args.no_tiled}"
    print(f"{args.model.name}: {flags}")
    print("pos  max|batch-step|  top2 gap  argmax same")
    for i in range(args.k):
        print(f"{i:3d}  {diff[i]:14.6f}  {gaps[i]:8.4f}  {bool(same_argmax[i])}")
    exact = int((diff == 0).sum())
    print(
        f"max diff {diff.max():.6f}; exact positions {exact}/{args.k}; argmax agrees "
        f"{int(same_argmax.sum())}/{args.k}; logit spread (median max-min) {spread:.2f}"
    )
    print(
        f"top-2 gap: min {gaps.min():.4f} median {float(np.median(gaps)):.4f}; "
        f"gaps below the max diff: {int((gaps < diff.max()).sum())}/{args.k}"
    )
    print(
        f"batch of {args.k}: {batch_s * 1000:.1f} ms; one step: {step_s * 1000:.1f} ms; "
        f"batch repeatable run to run: {repeatable}"
    )


if __name__ == "__main__":
    main()
