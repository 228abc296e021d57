"""Vad-Reasoning's native files (Vad-R1, Hugging Face ``wbfwonderful/Vad-R1``).

``Vad-Reasoning-SFT-test.jsonl`` (and ``-train``): one row per video, ``{"source": "UCF",
"video": "<name>.mp4", "anomaly_type": "<type>" | "Normal", "path": "<video path>",
"total_frames": int, "think": "<think>...</think>", "answer": "<answer>...</answer>",
"start": int, "end": int}``; ``start`` / ``end`` (0-based frames of the anomaly) only on
abnormal rows. The video is ``path`` relative to the data root (absolute paths are used as
they are), else ``videos/<video>`` or any file named ``<video>`` under the root.

Ground truth as the official detection evaluation builds it: an abnormal video (``anomaly_type``
not ``"Normal"``) is ``"Abnormal"`` with the interval
``[round(start / total_frames, 3), round(end / total_frames, 3)]``; a normal one is
``"Normal"`` with ``[0, 1]``.

``Vad-Reasoning-RL-train.jsonl`` (video-level weak labels, for AVA-GRPO): the same rows without
``think``, ``answer``, ``start`` and ``end`` (the public release's RL layout is not documented;
this is the sample world's, read with ``weak=True``).

Model outputs for ``vad-eval score --format vad-r1-results``: a JSON-lines file of
``{"video": "<name>.mp4", "output": str}`` (the official inference's ``results.jsonl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.base import TaskDataError
from tasks.formats.text import read_jsonl

TEST_FILE = "Vad-Reasoning-SFT-test.jsonl"
TRAIN_FILE = "Vad-Reasoning-SFT-train.jsonl"
RL_FILE = "Vad-Reasoning-RL-train.jsonl"


@dataclass(frozen=True)
class ReasoningRow:
    """One annotated video; ``interval`` is the normalised ground-truth interval."""

    video: str
    source: str
    anomaly_type: str
    path: str
    total_frames: int
    think: str
    answer: str
    start: int | None
    end: int | None
    lineno: int

    @property
    def label(self) -> str:
        return "Normal" if self.anomaly_type == "Normal" else "Abnormal"

    @property
    def interval(self) -> tuple[float, float]:
        if self.label == "Normal" or self.start is None or self.end is None:
            return (0.0, 1.0)
        return (round(self.start / self.total_frames, 3), round(self.end / self.total_frames, 3))


def read_rows(path: Path, weak: bool = False) -> list[ReasoningRow]:
    """Parse and validate a Vad-Reasoning JSON-lines file (errors name file, line, field).
    ``weak``: video-level rows (RL file): ``think``/``answer``/``start``/``end`` not needed
    (read as ``""`` / None)."""
    out = []
    seen: set[str] = set()
    for lineno, obj in read_jsonl(path, "Vad-Reasoning annotation file"):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            raise TaskDataError(f"{where}: expected a JSON object")
        for fld in ("video", "anomaly_type") + (() if weak else ("think", "answer")):
            if not isinstance(obj.get(fld), str):
                raise TaskDataError(f"{where}: field {fld!r} missing or not a string")
        total = obj.get("total_frames")
        if not isinstance(total, int) or total <= 0:
            raise TaskDataError(f"{where}: field 'total_frames' must be a positive integer")
        start, end = (None, None) if weak else (obj.get("start"), obj.get("end"))
        if obj["anomaly_type"] != "Normal" and not weak:
            for fld, v in (("start", start), ("end", end)):
                if not isinstance(v, int | float) or isinstance(v, bool):
                    raise TaskDataError(f"{where}: abnormal video needs a numeric {fld!r}")
            if not 0 <= start <= end:  # type: ignore[operator]
                raise TaskDataError(f"{where}: need 0 <= start <= end, got {start}, {end}")
        if obj["video"] in seen:
            raise TaskDataError(f"{where}: video {obj['video']!r} occurs twice")
        seen.add(obj["video"])
        out.append(ReasoningRow(
            video=obj["video"], source=str(obj.get("source", "")),
            anomaly_type=obj["anomaly_type"], path=str(obj.get("path") or ""),
            total_frames=total, think=str(obj.get("think", "")),
            answer=str(obj.get("answer", "")),
            start=int(start) if start is not None else None,
            end=int(end) if end is not None else None, lineno=lineno))
    return out


def video_file(root: Path, row: ReasoningRow) -> Path | None:
    """The row's video under ``root`` (see the module docstring), or None."""
    if row.path:
        p = Path(row.path)
        cand = p if p.is_absolute() else root / p
        if cand.is_file():
            return cand
    cand = root / "videos" / row.video
    if cand.is_file():
        return cand
    hits = sorted(p for p in root.rglob(Path(row.video).name) if p.is_file())
    return hits[0] if hits else None


def read_results(path: Path) -> dict[str, str]:
    """The official inference's ``results.jsonl`` -> ``{video: output}``."""
    out = {}
    for lineno, obj in read_jsonl(path, "Vad-R1 results file"):
        if not isinstance(obj, dict) or not isinstance(obj.get("video"), str) \
                or not isinstance(obj.get("output"), str):
            raise TaskDataError(f"{path}:{lineno}: expected {{'video': str, 'output': str}}")
        out[obj["video"]] = obj["output"]
    return out
