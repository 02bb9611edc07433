"""Engine benchmarks (issue: engine core): loop overhead, peak memory, prefix reuse.

    python -m bench.engine_bench [--model PATH] [--tokens 256] [--json]

1. Loop overhead: qcode's decode tok/s (drafting off) over a bare llama_decode + argmax loop on the same model,
   prompt and context settings, interleaved in one run (median of 3 each).
2. Peak RSS for a 4k-token prompt plus 512 generated tokens, in a fresh process, against model file + KV cache.
3. A second request sharing a 1.5k-token prefix with the first: tokens evaluated and time to first token of each.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from engine import Engine, GenerationRequest, load_settings
from engine.runtime import Runtime

STDLIB_TEXT = Path(textwrap.__file__).read_text(encoding="utf-8")


class DecodeTimer:
    """Wraps Runtime.decode to add up the time spent inside llama_decode (steal-proof overhead figures)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.seconds, self.calls = runtime, 0.0, 0
        self._decode = runtime.decode

    def __enter__(self) -> DecodeTimer:
        def timed(tokens: Any, start_pos: int, n_logits: int) -> None:
            started = time.perf_counter()
            self._decode(tokens, start_pos, n_logits)
            self.seconds += time.perf_counter() - started
            self.calls += 1

        self.runtime.decode = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        del self.runtime.decode


def bare_loop(runtime: Runtime, prompt: list[int], n_tokens: int) -> tuple[float, float]:
    """The plainest possible loop (one llama_decode and an argmax per token): tok/s and ms per token outside
    llama_decode."""
    runtime.clear()
    step = runtime.batch_capacity
    for start in range(0, len(prompt), step):
        chunk = prompt[start : start + step]
        runtime.decode(chunk, start, 1 if start + step >= len(prompt) else 0)
    token = int(runtime.logits(1)[0].argmax())
    position = len(prompt)
    inside = 0.0
    started = time.perf_counter()
    for _ in range(n_tokens - 1):
        before = time.perf_counter()
        runtime.decode([token], position, 1)
        inside += time.perf_counter() - before
        position += 1
        token = int(runtime.logits(1)[0].argmax())
    total = time.perf_counter() - started
    return (n_tokens - 1) / total, (total - inside) / (n_tokens - 1) * 1000


def loop_overhead(engine: Engine, n_tokens: int, rounds: int = 3) -> dict[str, Any]:
    prompt_text = STDLIB_TEXT[:2000]
    prompt = engine.tokenize(prompt_text)
    request = GenerationRequest(prompt_text, max_tokens=n_tokens, drafter="none", stop=())
    qcode_runs, bare_runs, qcode_outside, bare_outside = [], [], [], []
    for _ in range(rounds):
        engine.cache.reset()
        engine.complete(GenerationRequest(prompt, max_tokens=1, drafter="none"))  # prompt in: time decode only
        with DecodeTimer(engine.runtime) as timer:
            done = engine.complete(request)
        steps = done.stats.completion_tokens - 1
        qcode_runs.append(done.stats.decode_tokens_per_s)
        qcode_outside.append((done.stats.decode_s - timer.seconds) / max(steps, 1) * 1000)
        engine.cache.reset()
        tok_s, outside = bare_loop(engine.runtime, prompt, done.stats.completion_tokens)
        bare_runs.append(tok_s)
        bare_outside.append(outside)
    engine.cache.reset()
    q, b = statistics.median(qcode_runs), statistics.median(bare_runs)
    step_ms = 1000 / b
    q_out, b_out = statistics.median(qcode_outside), statistics.median(bare_outside)
    return {"qcode_tok_s": round(q, 2), "bare_tok_s": round(b, 2), "ratio": round(q / b, 4),
            "qcode_runs": [round(x, 2) for x in qcode_runs], "bare_runs": [round(x, 2) for x in bare_runs],
            "qcode_ms_outside_decode_per_token": round(q_out, 3),
            "bare_ms_outside_decode_per_token": round(b_out, 3),
            # the ratio a machine without CPU steal would show: same llama_decode time, each loop's own overhead
            "ratio_from_overheads": round((step_ms) / (step_ms - b_out + q_out), 4),
            "tokens": n_tokens}


def prefix_reuse(engine: Engine) -> dict[str, Any]:
    shared = STDLIB_TEXT[:6000]
    while engine.count_tokens(shared) < 1500:
        shared += STDLIB_TEXT[: 2000]
    engine.cache.reset()
    first = engine.complete(GenerationRequest(shared + "\n# Question 1: what does dedent do?\n", max_tokens=8,
                                              drafter="none"))
    second = engine.complete(GenerationRequest(shared + "\n# Question 2: what does fill do?\n", max_tokens=8,
                                               drafter="none"))
    return {
        "shared_prefix_tokens": engine.count_tokens(shared),
        "first": {"prompt_tokens": first.stats.prompt_tokens, "evaluated": first.stats.prompt_tokens_evaluated,
                  "ttft_ms": round(first.stats.ttft_ms, 1)},
        "second": {"prompt_tokens": second.stats.prompt_tokens, "evaluated": second.stats.prompt_tokens_evaluated,
                   "ttft_ms": round(second.stats.ttft_ms, 1)},
    }


RSS_SCRIPT = """
import json, resource, sys, textwrap
from pathlib import Path
from engine import Engine, GenerationRequest, load_settings
model = sys.argv[1] or None
engine = Engine(load_settings(n_ctx=8192, model=model))
text = Path(textwrap.__file__).read_text()
while engine.count_tokens(text) < 4096:
    text += text
tokens = engine.tokenize(text)[:4000]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
done = engine.complete(GenerationRequest(tokens, max_tokens=512, drafter="ngram", stop=()))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mb": peak / 1024, "rss_after_load_mb": before / 1024,
                  "completion_tokens": done.stats.completion_tokens, "model_bytes": engine.info.size_bytes,
                  "n_ctx": engine.n_ctx}))
"""


def kv_cache_bytes(engine: Engine) -> int:
    """Approximate KV bytes for n_ctx (q8_0: 34 bytes per 32 values) from the model's attention shape."""
    from engine.gguf_header import read_gguf_header

    meta = read_gguf_header(engine.info.path).metadata
    arch = engine.info.arch
    n_layer = int(meta.get(f"{arch}.block_count", 0))
    n_kv = int(meta.get(f"{arch}.attention.head_count_kv", 1))
    k_len = int(meta.get(f"{arch}.attention.key_length", 128))
    v_len = int(meta.get(f"{arch}.attention.value_length", k_len))
    per_value = {"q8_0": 34 / 32, "f16": 2.0, "f32": 4.0, "q4_0": 18 / 32}.get(engine.settings.kv_type_k, 2.0)
    return int(engine.n_ctx * n_layer * n_kv * (k_len + v_len) * per_value)


def peak_rss(model: str | None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, model or ""], capture_output=True, text=True,
                          check=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(model=args.model, n_ctx=8192, threads=args.threads)
    engine = Engine(settings)
    print("bench: loop overhead ...", file=sys.stderr, flush=True)
    report: dict[str, Any] = {"model": engine.info.name, "quant": engine.info.quant, "kv_type": engine.kv_type}
    report["loop_overhead"] = loop_overhead(engine, args.tokens, args.rounds)
    print("bench: prefix reuse ...", file=sys.stderr, flush=True)
    report["prefix_reuse"] = prefix_reuse(engine)
    report["kv_cache_mb_at_8192"] = round(kv_cache_bytes(engine) / 2**20, 1)
    engine.close()
    if not args.skip_rss:
        print("bench: peak RSS (4k prompt + 512 tokens, fresh process) ...", file=sys.stderr, flush=True)
        rss = peak_rss(args.model)
        rss["model_mb"] = round(rss.pop("model_bytes") / 2**20, 1)
        rss["over_model_and_kv_mb"] = round(rss["peak_rss_mb"] - rss["model_mb"] - report["kv_cache_mb_at_8192"], 1)
        report["peak_rss"] = rss
    report["this_process_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2) if args.json else _pretty(report))
    return 0


def _pretty(report: dict[str, Any]) -> str:
    lo, pr = report["loop_overhead"], report["prefix_reuse"]
    lines = [
        f"model {report['model']} ({report['quant']}), KV {report['kv_type']}",
        f"loop overhead: qcode {lo['qcode_tok_s']} tok/s vs bare llama_decode loop {lo['bare_tok_s']} tok/s "
        f"= {lo['ratio']:.3f}; outside llama_decode per token: qcode {lo['qcode_ms_outside_decode_per_token']} ms, "
        f"bare {lo['bare_ms_outside_decode_per_token']} ms -> {lo['ratio_from_overheads']:.3f}",
        f"prefix reuse ({pr['shared_prefix_tokens']} shared tokens): first request evaluated "
        f"{pr['first']['evaluated']}/{pr['first']['prompt_tokens']} tokens, ttft {pr['first']['ttft_ms']} ms; "
        f"second evaluated {pr['second']['evaluated']}/{pr['second']['prompt_tokens']}, "
        f"ttft {pr['second']['ttft_ms']} ms",
    ]
    if "peak_rss" in report:
        r = report["peak_rss"]
        lines.append(f"peak RSS (4k prompt + {r['completion_tokens']} tokens): {r['peak_rss_mb']:.0f} MB = model "
                     f"{r['model_mb']:.0f} MB + KV {report['kv_cache_mb_at_8192']} MB + "
                     f"{r['over_model_and_kv_mb']:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
