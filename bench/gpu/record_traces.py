"""Record real n-gram acceptance on the CPU, for replay on a GPU model whose random weights accept nothing.

    python -m bench.gpu.record_traces [--out bench/gpu/traces.json] [--max-tokens 512]

For every task of tui/bench/tasks.py on the default model (greedy, exact_batches so drafted and plain runs emit the
same tokens): the prompt, the reference the n-gram drafter searches, the answer's tokens, and the steps of a real
drafted run (tokens the drafter proposed, the draft length the controller verified, how many were accepted).
The answer's tokens let a replay re-run any drafting policy exactly: under greedy decoding a drafted token is
accepted iff it equals the answer's token at its position.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import Engine, load_settings
from engine.draft.adaptive import DraftController
from engine.draft.ngram import NgramDrafter
from engine.draft.plan import DraftPlan, DraftSource
from engine.tasks import build_request
from tui.bench.tasks import default_tasks

DEFAULT_OUT = Path(__file__).resolve().parent / "traces.json"


@dataclass
class RecordingDrafter:
    """Wraps the engine's n-gram drafter and notes every step: [position, proposed, drafted, accepted]."""

    inner: NgramDrafter
    prompt_len: int = 0
    steps: list[list[int]] = field(default_factory=list)
    name: str = "ngram"

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self.prompt_len = len(prompt)
        self.steps = []
        self.inner.begin(prompt, reference)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        proposal = self.inner.propose(history, limit)
        # position: answer tokens emitted so far; drafted/accepted stay 0 unless the draft is verified
        self.steps.append([len(history) - self.prompt_len, len(proposal), 0, 0])
        return proposal

    def observe(self, proposed: int, accepted: int) -> None:
        self.steps[-1][2:] = [proposed, accepted]
        self.inner.observe(proposed, accepted)

    @property
    def streak(self) -> int:
        return self.inner.streak


def record(engine: Engine, max_tokens: int) -> list[dict[str, Any]]:
    settings = engine.settings
    recorded = []
    for task in default_tasks():
        request, _ = build_request(engine, task.task)
        request = replace(request, max_tokens=min(request.max_tokens or max_tokens, max_tokens))
        prompt = engine.prompt_tokens(request)
        reference = engine.tokenize(request.reference, add_bos=False) if request.reference else []
        engine.complete(replace(request, max_tokens=1, drafter="none"))  # the prompt into the cache
        plain = engine.complete(replace(request, drafter="none"))
        drafter = RecordingDrafter(NgramDrafter(settings.ngram_min, settings.ngram_max))
        # a fresh drafter and controller per task, as a fresh qcode process would have
        engine.replace_plan("ngram", DraftPlan("ngram", [DraftSource(drafter, DraftController(settings.draft_max))]))
        drafted = engine.complete(replace(request, drafter="ngram"))
        same = drafted.tokens == plain.tokens
        verified = [s for s in drafter.steps if s[2]]
        row = {
            "name": task.name, "kind": task.kind, "task": task.task.task,
            "prompt": prompt, "reference": reference, "answer": list(plain.tokens),
            "finish": plain.stats.finish_reason, "identical": same,
            "steps": drafter.steps,
            "cpu": {
                "plain_tok_s": round(plain.stats.decode_tokens_per_s, 2),
                "ngram_tok_s": round(drafted.stats.decode_tokens_per_s, 2),
                "proposed": drafted.stats.draft_proposed, "accepted": drafted.stats.draft_accepted,
                "draft_steps": drafted.stats.draft_steps,
            },
        }
        recorded.append(row)
        print(
            f"record: {task.name}: {len(prompt)} prompt, {len(plain.tokens)} answer tokens; "
            f"{len(verified)} drafts, {drafted.stats.draft_accepted}/{drafted.stats.draft_proposed} accepted; "
            f"CPU {row['cpu']['plain_tok_s']} -> {row['cpu']['ngram_tok_s']} tok/s; identical {same}",
            file=sys.stderr, flush=True,
        )
    return recorded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.record_traces", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    settings = load_settings(exact_batches=True, threads=args.threads)
    engine = Engine(settings)
    started = time.perf_counter()
    tasks = record(engine, args.max_tokens)
    data = {
        "about": "n-gram acceptance recorded on the CPU with the default model; token ids are the model's own",
        "model": engine.info.name, "quant": engine.info.quant, "vocab_size": engine.info.vocab_size,
        "draft_max": settings.draft_max, "ngram": [settings.ngram_min, settings.ngram_max],
        "recorded": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - started, 1),
        "tasks": tasks,
    }
    engine.close()
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"record: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
