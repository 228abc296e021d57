"""Output helper shared by the benchmarks."""

from __future__ import annotations

import json
import sys


def emit(name: str, value: float, unit: str, goal: str, ok: bool | None, **extra: object) -> None:
    """Print one benchmark line: ``{"name", "value", "unit", "goal", "ok", ...}``."""
    rec = {"name": name, "value": round(float(value), 6), "unit": unit, "goal": goal, "ok": ok}
    rec.update(extra)
    print(json.dumps(rec), flush=True)
    sys.stdout.flush()
