"""A synthetic checkout-service log stream with a known fault (for evidence tests).

Baseline: a normal mix for an hour. Incident: the same mix for 15 minutes plus the fault —
timeouts to one upstream database host (90 % of them ``10.0.3.7:5432``), a surge of an
existing retry message, and the payment heartbeat vanishing.
"""

from __future__ import annotations

import random

S = 1_000_000_000
BASE_START, BASE_END = 1_700_000_000, 1_700_003_600
INC_START, INC_END = 1_700_003_600, 1_700_004_500
FAULT_HOST = "10.0.3.7:5432"


def _normal(rng: random.Random, heartbeat: bool) -> tuple[str, str]:
    r = rng.random()
    if r < 0.45:
        return "info", f"GET /api/orders/{rng.randint(1, 99999)} 200 {rng.randint(3, 60)}ms"
    if r < 0.75:
        return "info", f"cache hit for key cart:{rng.randint(1, 99999)}"
    if r < 0.9:
        return "info", f"processed batch {rng.randint(1, 9999)} with {rng.randint(1, 90)} items"
    if r < 0.97:
        return (
            "info",
            f"payment heartbeat ok from payments-{rng.randint(0, 2)} in {rng.randint(1, 9)}ms",
        )
    return "warn", f"retrying request to inventory attempt={rng.randint(1, 3)}"


def checkout_logs(seed: int = 7) -> tuple[list[tuple[int, str, dict]], list[tuple[int, str, dict]]]:
    """``(baseline, incident)`` records as ``(ts_ns, line, labels)``; one line every 2 s."""
    rng = random.Random(seed)
    base, inc = [], []
    for t in range(BASE_START, BASE_END, 2):
        level, line = _normal(rng, True)
        base.append((t * S, line, {"app": "checkout", "level": level, "pod": f"checkout-{t % 3}"}))
    for t in range(INC_START, INC_END, 2):
        level, line = _normal(rng, False)
        if "heartbeat" in line:
            continue  # the payment heartbeat vanishes
        inc.append((t * S, line, {"app": "checkout", "level": level, "pod": f"checkout-{t % 3}"}))
        if t % 4 == 0:
            host = FAULT_HOST if rng.random() < 0.9 else "10.0.3.8:5432"
            inc.append(
                (
                    t * S + 1,
                    f"upstream request to {host} timed out after {rng.randint(1000, 5000)}ms",
                    {"app": "checkout", "level": "error", "pod": "checkout-1"},
                )
            )
        if t % 6 == 0:
            inc.append(
                (
                    t * S + 2,
                    f"retrying request to inventory attempt={rng.randint(1, 3)}",
                    {"app": "checkout", "level": "warn", "pod": f"checkout-{t % 3}"},
                )
            )
    return base, inc
