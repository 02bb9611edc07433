"""How often a draft model's greedy guess is the target's next token, on the target's own greedy answers.

    python -m bench.pair_acceptance [--target coder-1.5b] [--draft coder-0.5b] [--tasks explain] [--max-tokens 160]

For every bench task (tui/bench/tasks.py) the target answers greedily; the draft model then reads the prompt and the
answer (teacher-forced) and its argmax at each answer position is compared with the target's token there. That rate
is the per-token acceptance a draft model would see from a perfect start (chained drafts see less): the `a` of the
pairing decision (engine/draft/pairing.py). Counts only: no timing, so a loaded machine does not change it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from engine import Engine, load_settings
from engine.model import resolve_model
from engine.runtime import Runtime, RuntimeConfig
from engine.tasks import build_request
from tui.bench.tasks import default_tasks

ROWS = 64  # logits rows per decode call (a 152k vocabulary: 39 MB of floats)


def agreement(draft: Runtime, prompt: Sequence[int], answer: Sequence[int]) -> tuple[int, int]:
    """(positions where the draft's argmax equals the answer's next token, positions compared)."""
    draft.clear()
    tokens = [*prompt, *answer]
    first = len(prompt) - 1  # the row that predicts the answer's first token
    position = 0
    hits = compared = 0
    while position < len(tokens) - 1:
        end = min(position + ROWS, len(tokens) - 1) if position + ROWS > first else min(first, position + 512)
        chunk = tokens[position:end]
        wanted = [i for i in range(position, end) if i >= first]
        draft.decode(chunk, position, len(chunk) if wanted else 0)
        if wanted:
            rows = draft.logits(len(chunk))
            for i in wanted:
                compared += 1
                hits += int(rows[i - position].argmax()) == tokens[i + 1]
        position = end
    return hits, compared


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pair_acceptance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="coder-1.5b")
    parser.add_argument("--draft", default="coder-0.5b")
    parser.add_argument("--tasks", default="", help="only tasks whose name contains one of these (comma-separated)")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    settings = load_settings(model=args.target, threads=args.threads, draft="none")
    engine = Engine(settings)
    draft = Runtime(resolve_model(args.draft, setting="draft"), RuntimeConfig.from_settings(settings))
    rows = []
    for task in default_tasks():
        if args.tasks and not any(w.strip() in task.name for w in args.tasks.split(",")):
            continue
        request, _ = build_request(engine, task.task)
        done = engine.complete(dataclasses.replace(request, max_tokens=args.max_tokens, drafter="none"))
        hits, compared = agreement(draft, engine.prompt_tokens(request), done.tokens)
        rows.append({"task": task.name, "kind": task.kind, "agree": hits, "positions": compared,
                     "rate": round(hits / compared, 3) if compared else None})
        print(f"pair_acceptance: {task.name}: {hits}/{compared}", file=sys.stderr, flush=True)
    draft.close()
    engine.close()
    print(json.dumps({"target": args.target, "draft": args.draft, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
