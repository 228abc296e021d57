"""Score text answers produced by other codebases with a language-side task's protocol.

Formats (``fmt``):

* ``vru-responses``: VRU-Accident's ``Model_Response`` files, a folder (searched recursively)
  or one file: ``<SUBSET>_VQA_response.json`` for ``vru_accident_qa`` and
  ``<SUBSET>_Dense_Captioning_response.json`` for ``vru_accident_caption`` (see
  :mod:`tasks.formats.vru`). A ``null`` prediction counts as unanswered.
* ``vad-r1-results``: Vad-R1's inference output, JSON lines ``{"video": ..., "output": ...}``,
  for ``vad_reasoning``.
* ``responses-jsonl``: the harness's own prediction records (a run's ``predictions.jsonl``),
  JSON lines ``{"video_id": ..., "responses": {query id: text}}``, or one answer per line as
  ``{"video_id": ..., "qid": ..., "response": ...}``; any language-side task.

Keys match sample ids with or without a video extension; keys matching no sample are counted in
``result["import"]["unused_keys"]``; samples without an answer count as missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.base import TaskDataError, VideoSample
from tasks.formats import vad_reasoning, vru
from tasks.formats.text import read_jsonl
from tasks.formats.video import video_id
from tasks.text_task import TextTask

TEXT_FORMATS = ("vru-responses", "vad-r1-results", "responses-jsonl")


def _responses_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for lineno, obj in read_jsonl(path, "responses file"):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict) or not isinstance(obj.get("video_id"), str):
            raise TaskDataError(f"{where}: expected an object with a string 'video_id'")
        rec = out.setdefault(obj["video_id"], {})
        if isinstance(obj.get("responses"), dict):
            rec.update(obj["responses"])
        elif "qid" in obj and (obj.get("response") is None or isinstance(obj["response"], str)):
            rec[str(obj["qid"])] = obj["response"]
        else:
            raise TaskDataError(f"{where}: need 'responses' (object) or 'qid' and 'response'")
    return out


def read_text_predictions(task: TextTask, path: Path, fmt: str) -> dict[str, dict[str, Any]]:
    """``{key: {query id: text or None}}`` from an external file, per ``fmt``."""
    if fmt == "vru-responses":
        if task.name == "vru_accident_qa":
            return dict(vru.read_vqa_responses(path))
        if task.name == "vru_accident_caption":
            return {k: {"caption": v} for k, v in vru.read_caption_responses(path).items()}
        raise TaskDataError(f"format 'vru-responses' is for the vru_accident_* tasks, "
                            f"not {task.name!r}")
    if fmt == "vad-r1-results":
        if task.name != "vad_reasoning":
            raise TaskDataError(f"format 'vad-r1-results' is for vad_reasoning, not "
                                f"{task.name!r}")
        if not path.is_file():
            raise TaskDataError(f"{path}: results file not found")
        return {k: {"reasoning": v} for k, v in vad_reasoning.read_results(path).items()}
    if fmt == "responses-jsonl":
        if not path.is_file():
            raise TaskDataError(f"{path}: responses file not found")
        return _responses_jsonl(path)
    raise TaskDataError(f"unknown text format {fmt!r}; known: {', '.join(TEXT_FORMATS)}")


def _match(key: str, ids: set[str], by_base: dict[str, str]) -> str | None:
    """Sample id for a file key: exact, then without a video extension, then by base name
    when that is unique among the samples."""
    if key in ids:
        return key
    k = key.replace("\\", "/").lstrip("./")
    stem = k.rsplit("/", 1)[0] + "/" + video_id(k) if "/" in k else video_id(k)
    if stem in ids:
        return stem
    return by_base.get(video_id(k))


def score_text(task: TextTask, samples: Sequence[VideoSample], path: str | Path, fmt: str,
               ) -> dict[str, Any]:
    """Evaluate external text answers with ``task`` (same result as ``task.evaluate``)."""
    p = Path(path)
    if not p.exists():
        raise TaskDataError(f"{p}: predictions not found")
    raw = read_text_predictions(task, p, fmt)
    ids = {s.video_id for s in samples}
    base_count = Counter(video_id(s.video_id) for s in samples)
    by_base = {video_id(s.video_id): s.video_id for s in samples
               if base_count[video_id(s.video_id)] == 1}
    predictions: dict[str, dict[str, Any]] = {}
    unused = 0
    for key, responses in raw.items():
        sid = _match(key, ids, by_base)
        if sid is None:
            unused += 1
            continue
        predictions[sid] = {"video_id": sid, "responses": responses}
    result = task.evaluate(samples, predictions)
    result["import"] = {"path": str(p), "format": fmt, "unused_keys": unused}
    return result
