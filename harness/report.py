"""Plain-text rendering of a run's result for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADLINE = ("roc_auc", "pr_auc", "average_precision", "roc_auc_anomalous_videos",
            "video_roc_auc", "acc_avg", "accuracy", "f1", "miou")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if v is None:
        return "n/a"
    return str(v)


def format_result(result: Mapping[str, Any]) -> str:
    """The metrics table: headline metrics with 95% intervals, counts, per-step metrics."""
    metrics = result.get("metrics", {})
    ci = result.get("ci95", {}) or {}
    lines = [
        f"task {result.get('task')} | method {result.get('method')} | "
        f"model {result.get('model')} | split {result.get('split')}",
        f"{'metric':<28}{'value':>10}   95% CI (bootstrap over videos)",
    ]
    names = [k for k in HEADLINE if k in metrics] + sorted(
        k for k, v in metrics.items()
        if k not in HEADLINE and isinstance(v, float)
    )
    for k in names:
        interval = ci.get(k)
        ci_s = f"[{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else ""
        lines.append(f"{k:<28}{_fmt(metrics[k]):>10}   {ci_s}")
    counts = {k: v for k, v in metrics.items() if isinstance(v, int) and not isinstance(v, bool)}
    counts |= {k: v for k, v in (result.get("counts") or {}).items() if isinstance(v, int)}
    if "unparsed" in result:
        counts["unparsed"] = result["unparsed"]
    if counts:
        lines.append("  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for k, reason in sorted((result.get("unavailable_metrics") or {}).items()):
        lines.append(f"{k:<28}{'unavailable':>10}   {reason}")
    steps = result.get("steps") or {}
    if steps:
        lines.append("per inference step (the table above is the final step):")
        for step, vals in [*steps.items(), ("final", metrics)]:
            lines.append("  " + f"{step:<8}" + "  ".join(
                f"{k}={_fmt(vals[k])}" for k in HEADLINE[:3] if k in vals))
    summary = result.get("method_summary") or {}
    if summary:
        lines.append("method: " + "  ".join(f"{k}={_fmt(v)}" for k, v in summary.items()
                                             if not isinstance(v, (dict, list))))
        for k, v in summary.items():  # one line per group of figures (e.g. operator usage)
            if isinstance(v, dict) and v and all(not isinstance(x, (dict, list))
                                                 for x in v.values()):
                lines.append(f"method {k}: " + "  ".join(f"{sk}={_fmt(sv)}"
                                                        for sk, sv in v.items()))
            elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
                lines.append(f"method {k}: " + "; ".join(v))
    errors = result.get("errors") or {}
    if errors.get("n_videos"):
        more = " ..." if errors["n_videos"] > 5 else ""
        lines.append(f"videos that failed to decode: {errors['n_videos']} "
                     f"({', '.join(errors['videos'][:5])}{more})")
    return "\n".join(lines)
