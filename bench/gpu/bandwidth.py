"""Device-to-device copy bandwidth through PyTorch, counting bytes read and written: the decode bound's denominator.

    python3 -m bench.gpu.bandwidth      # prints JSON: {"gb_s": ..., "device": ...}
"""

from __future__ import annotations

import json


def measure(n_bytes: int = 1 << 30, repeats: int = 20) -> dict[str, object]:
    import torch

    x = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    x.random_(0, 255)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    runs = []
    for _ in range(5):
        start.record()
        for _ in range(repeats):
            y.copy_(x)
        end.record()
        torch.cuda.synchronize()
        runs.append(2 * n_bytes * repeats / (start.elapsed_time(end) / 1000) / 1e9)
    runs.sort()
    return {"gb_s": round(runs[len(runs) // 2], 1), "runs": [round(r, 1) for r in runs],
            "device": torch.cuda.get_device_name()}


if __name__ == "__main__":
    print(json.dumps(measure()))
