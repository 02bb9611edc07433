"""Tables and the MTP projection from a gpu_bench results.json.

    python -m bench.gpu.report RESULTS.json [--markdown]

The MTP projection multiplies measured costs by acceptance rates reported publicly for Qwen3.6-27B (sources in
MTP_SOURCES). Per step with a draft of d tokens, each accepted with probability p given the one before:
    tokens per step   E(d, p) = 1 + p + p^2 + ... + p^d          (the target's own token, then the accepted run)
    time per step     T(d, p) = verify(d + 1) + head(d) + catch_up(E)
    speedup           E(d, p) * T_plain / T(d, p)
where verify(n) is the measured verify call of n tokens with the MTP head following the target, head(d) a measured
propose of depth d (one head call with the LM head, d - 1 chained calls), catch_up the extra cost of the head
taking in the accepted rows, and T_plain the plain engine's decode step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# Public acceptance reports for Qwen3.6 MTP drafting (greedy or low temperature), as per-token acceptance p.
MTP_SOURCES = [
    (0.55, "Qwen3.6-27B, llama.cpp draft-mtp n=4: P(token k accepted | k-1 accepted) = 0.55, mean length 3.00, "
           "+60% (https://bench.unsigned.gg/)"),
    (0.72, "Qwen3.6-27B, llama.cpp MTP branch, explain_concept: 130/180 drafts accepted "
           "(https://github.com/am17an/llama.cpp/pull/6)"),
    (0.787, "Qwen3.6-27B UD-Q4_K_XL, llama.cpp PR #22673 build: 210/267 drafts accepted (78.7%) "
            "(https://github.com/noonghunna/club-3090/issues/85)"),
    (0.85, "Qwen3.6-27B, coding tasks: 79-89% draft acceptance, N=3 best "
           "(https://theneuralfeed.com/article/mtp-benchmark-results-the-nature-of-the-generative-task-dictates-"
           "whether-you-wil/hKbnpEX7)"),
    (0.885, "Qwen3.5/3.6 MTP in vLLM: per-position acceptance 0.885, 0.740, mean acceptance length 2.62 "
            "(https://github.com/ikawrakow/ik_llama.cpp/pull/1669)"),
    (0.915, "Qwen3.6-27B, llama.cpp MTP branch, code_python: 140/153 drafts accepted "
            "(https://github.com/am17an/llama.cpp/pull/6)"),
]


def expected_tokens(d: int, p: float) -> float:
    return sum(p**i for i in range(d + 1))


def _ms(table: dict[str, Any], key: int) -> float | None:
    """table[key] in ms ({"total": ms} cells too), linearly interpolated between measured keys; None outside."""
    points = {}
    for k, value in table.items():
        points[int(k)] = float(value["total"] if isinstance(value, dict) else value)
    if key in points:
        return points[key]
    lower = max((k for k in points if k < key), default=None)
    upper = min((k for k in points if k > key), default=None)
    if lower is None or upper is None:
        return None
    return points[lower] + (points[upper] - points[lower]) * (key - lower) / (upper - lower)


DEPTHS = (1, 2, 3, 4, 6, 8)


def _step(results: dict[str, Any], kv: str, d: int, p: float) -> dict[str, float] | None:
    """Measured parts of one MTP step of depth d at acceptance p (ms), and its expected tokens."""
    mtp = results["mtp"]
    verify = _ms(mtp["cost_curve_with_head"]["ms"], d + 1)
    head = _ms(mtp["costs"]["depth_ms"], d)
    if verify is None or head is None:
        return None
    e = expected_tokens(d, p)
    catch = mtp["costs"]["catch_up_ms"]
    extra = max(0.0, (_ms(catch, max(1, round(e))) or 0.0) - (_ms(catch, 1) or 0.0))
    curves = results["kv"][kv]["cost_curve"]
    steady = _ms(curves.get("steady 1024", {}).get("ms", {}), d + 1)
    plain_mixed = _ms(curves.get("depth 1024", {}).get("ms", {}), d + 1)
    # a verify call that replays a CUDA graph: the steady-shape cost plus what the head adds to the call
    graph_verify = steady + (verify - plain_mixed) if steady is not None and plain_mixed is not None else None
    return {"e": e, "verify": verify, "head": head, "extra": extra, "graph_verify": graph_verify or verify}


def mtp_projection(results: dict[str, Any], kv: str = "q8_0") -> dict[str, Any]:
    t_plain = 1000.0 / results["kv"][kv]["decode"]["qcode_tok_s"]
    rows = []
    for p, source in MTP_SOURCES:
        best: dict[str, Any] | None = None
        best_graph = 0.0
        for d in DEPTHS:
            part = _step(results, kv, d, p)
            if part is None:
                continue
            step = part["verify"] + part["head"] + part["extra"]
            row = {"p": p, "d": d, "tokens_per_step": round(part["e"], 3), "verify_ms": round(part["verify"], 2),
                   "head_ms": round(part["head"], 2), "catch_up_ms": round(part["extra"], 2),
                   "step_ms": round(step, 2), "speedup": round(part["e"] * t_plain / step, 3),
                   "source": source}
            best_graph = max(best_graph, part["e"] * t_plain / (part["graph_verify"] + part["head"] + part["extra"]))
            if best is None or row["speedup"] > best["speedup"]:
                best = row
        if best:
            best["speedup_graph_verify"] = round(best_graph, 3)
            rows.append(best)
    return {"plain_step_ms": round(t_plain, 2), "best_by_rate": rows}


def required_p(results: dict[str, Any], target: float = 2.5, kv: str = "q8_0") -> dict[int, str]:
    """The per-token acceptance MTP would need for `target` with the measured costs, per depth."""
    t_plain = 1000.0 / results["kv"][kv]["decode"]["qcode_tok_s"]
    out = {}
    for d in DEPTHS:
        def speed(p: float, d: int = d) -> float:
            part = _step(results, kv, d, p)
            assert part is not None
            return part["e"] * t_plain / (part["verify"] + part["head"] + part["extra"])

        if _step(results, kv, d, 1.0) is None:
            continue
        if speed(1.0) < target:
            out[d] = f"unreachable (p = 1 gives {speed(1.0):.2f}x)"
            continue
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if speed(mid) < target else (lo, mid)
        out[d] = f"p >= {hi:.3f}"
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = []
    model = results["model"]
    bw = (results.get("copy_bandwidth") or {}).get("gb_s")
    per_token = model.get("bytes_read_per_token", 0)
    lines.append(f"Card: {(results.get('copy_bandwidth') or {}).get('device', '?')}, copy bandwidth {bw} GB/s; "
                 f"model {model.get('params', 0) / 1e9:.2f}B parameters, {model.get('file_bytes', 0) / 1e9:.2f} GB, "
                 f"{per_token / 1e9:.2f} GB of weights read per decoded token.")
    lines.append("")
    lines.append("| KV | prompt tok/s (qcode / bare) | decode tok/s qcode | bare loop | ratio | bandwidth bound share "
                 "| GPU memory |")
    lines.append("|---|---|---|---|---|---|---|")
    for kv, res in results["kv"].items():
        p, d = res.get("prompt", {}), res.get("decode", {})
        share = f"{per_token / 1e9 * d['qcode_tok_s'] / bw:.0%}" if d and bw and per_token else "-"
        mem = res.get("gpu_memory_peak_mib") or res.get("gpu_memory_loaded_mib") or {}
        lines.append(f"| {kv} | {p.get('qcode_tok_s', '-')} / {p.get('bare_tok_s', '-')} | {d.get('qcode_tok_s', '-')} "
                     f"| {d.get('bare_tok_s', '-')} | {d.get('ratio', '-')} | {share} | "
                     f"{mem.get('used', '-')} MiB |")
    for kv, res in results["kv"].items():
        for name, curve in res.get("cost_curve", {}).items():
            rel = curve["relative"]
            ms1 = curve["ms"].get("1", curve["ms"].get(1, {})).get("total")
            cells = " ".join(f"{n}:{v}" for n, v in rel.items())
            lines.append(f"- c(n), KV {kv}, {name}{' (same shape repeated)' if curve.get('steady') else ''}: "
                         f"one token {ms1} ms; {cells}")
    for kv, res in results["kv"].items():
        for name in ("replay", "replay_ideal"):
            for kind, by_policy in (res.get(f"{name}_summary") or {}).items():
                cells = ", ".join(f"{policy} {v['total']}x" for policy, v in by_policy.items() if policy != "none")
                lines.append(f"- {name} ({kind}), KV {kv}, total decode time of no drafting / with: {cells}")
    for kind, by_policy in ((results.get("mtp") or {}).get("replay_summary") or {}).items():
        cells = ", ".join(f"{policy} {v['total']}x" for policy, v in by_policy.items() if policy != "none")
        lines.append(f"- MTP replay ({kind}): {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(markdown(results))
    if results.get("mtp", {}).get("costs") and results.get("mtp", {}).get("cost_curve_with_head"):
        projection = mtp_projection(results)
        print(f"\nMTP projection (plain step {projection['plain_step_ms']} ms):")
        for row in projection["best_by_rate"]:
            print(f"  p={row['p']}: best d={row['d']}: E={row['tokens_per_step']} tokens per "
                  f"{row['step_ms']} ms (verify {row['verify_ms']} + head {row['head_ms']} + catch-up "
                  f"{row['catch_up_ms']}) -> {row['speedup']}x; with graph-replayed verify calls "
                  f"{row['speedup_graph_verify']}x")
        print(f"  acceptance needed for 2.5x: {required_p(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
