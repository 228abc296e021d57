"""VRU-Accident's native files (Kimyounggun99/VRU-Accident, ``MetaData/``).

Layout under the data root (the official repository's)::

    MetaData/<SUBSET>/<SUBSET>_VQA_annotation.json
    MetaData/<SUBSET>/<SUBSET>_Dense_Caption.json
    VRU_videos/<SUBSET>/<name>.mp4

for SUBSET in CAP_DATA, DADA_2000, DoTA, MANUAL_DATA (287/223/100/390 videos).

* VQA annotation: ``{"./VRU_videos/DoTA/VRU_1.mp4": {"weather and light": {"question": str,
  "options": "A. ..., B. ..., C. ..., D. ...", "GT": "B"}, ...}}`` with the six categories of
  :data:`CATEGORIES`.
* Dense caption: ``{"./VRU_videos/DoTA/VRU_1": {"gt": str}}`` (key without extension).
* Model responses (``Model_Response/``): ``<SUBSET>_VQA_response.json`` with
  ``{key: {category: {"pred": str | null, "GT": str}}}`` and
  ``<SUBSET>_Dense_Captioning_response.json`` with ``{key: {"pred": str}}``.

Sample ids are ``<SUBSET>/<name>`` (``DoTA/VRU_1``). Files are found at the layout's place or,
failing that, anywhere under the root (a flat copy of the ``MetaData`` folders works).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.base import TaskDataError
from tasks.formats.text import read_json

SUBSETS = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
CATEGORIES = ("weather and light", "location", "road type", "accident type",
              "accident reason", "prevention method")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def sample_id(key: str) -> str:
    """``"./VRU_videos/DoTA/VRU_1.mp4"`` -> ``"DoTA/VRU_1"`` (also without ``./`` or ext)."""
    k = key.strip().replace("\\", "/")
    while k.startswith("./"):
        k = k[2:]
    if k.startswith("VRU_videos/"):
        k = k[len("VRU_videos/"):]
    for suf in VIDEO_SUFFIXES:
        if k.lower().endswith(suf):
            k = k[: -len(suf)]
    return k


def _find(root: Path, subset: str, suffix: str) -> Path | None:
    name = f"{subset}_{suffix}"
    direct = root / "MetaData" / subset / name
    if direct.is_file():
        return direct
    hits = sorted(p for p in root.rglob(name) if p.is_file())
    return hits[0] if hits else None


def subset_files(root: Path, suffix: str) -> dict[str, Path]:
    """``{subset: file}`` of the subsets present under ``root`` for ``suffix``
    (``"VQA_annotation.json"``, ``"Dense_Caption.json"``)."""
    out = {}
    for subset in SUBSETS:
        path = _find(root, subset, suffix)
        if path is not None:
            out[subset] = path
    if not out:
        raise TaskDataError(f"{root}: no VRU-Accident '*_{suffix}' file found (expected "
                            f"MetaData/<SUBSET>/<SUBSET>_{suffix} for SUBSET in "
                            f"{', '.join(SUBSETS)})")
    return out


def video_path(root: Path, sid: str) -> Path | None:
    """The video file of sample ``sid`` under ``root`` (``VRU_videos/<id>.mp4``), or None."""
    for base in (root / "VRU_videos", root):
        for suf in VIDEO_SUFFIXES:
            p = base / f"{sid}{suf}"
            if p.is_file():
                return p
    return None


def read_vqa(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """One ``*_VQA_annotation.json`` -> ``{sample id: {category: {"question", "options",
    "GT"}}}``, validated (errors name the file, the video and the field)."""
    data = read_json(path, "VRU-Accident VQA annotation")
    if not isinstance(data, dict):
        raise TaskDataError(f"{path}: expected an object keyed by video")
    out: dict[str, dict[str, dict[str, str]]] = {}
    for key, cats in data.items():
        where = f"{path}: video {key!r}"
        if not isinstance(cats, dict):
            raise TaskDataError(f"{where}: expected an object of categories")
        entry = {}
        for cat, q in cats.items():
            if not isinstance(q, dict):
                raise TaskDataError(f"{where}: category {cat!r} is not an object")
            for fld in ("question", "options", "GT"):
                if not isinstance(q.get(fld), str):
                    raise TaskDataError(f"{where}: category {cat!r}: field {fld!r} missing or "
                                        f"not a string")
            entry[cat] = {"question": q["question"], "options": q["options"],
                          "GT": q["GT"].strip().upper()}
        sid = sample_id(key)
        if sid in out:
            raise TaskDataError(f"{where}: video appears twice")
        out[sid] = entry
    return out


def read_captions(path: Path) -> dict[str, str]:
    """One ``*_Dense_Caption.json`` -> ``{sample id: reference caption}``."""
    data = read_json(path, "VRU-Accident dense captions")
    if not isinstance(data, dict):
        raise TaskDataError(f"{path}: expected an object keyed by video")
    out = {}
    for key, value in data.items():
        if not isinstance(value, dict) or not isinstance(value.get("gt"), str):
            raise TaskDataError(f"{path}: video {key!r}: field 'gt' missing or not a string")
        out[sample_id(key)] = value["gt"]
    return out


def _response_files(path: Path, suffix: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TaskDataError(f"{path}: predictions not found")
    files = sorted(p for p in path.rglob(f"*_{suffix}") if p.is_file())
    if not files:
        raise TaskDataError(f"{path}: no '*_{suffix}' files")
    return files


def read_vqa_responses(path: Path) -> dict[str, dict[str, str | None]]:
    """``*_VQA_response.json`` file(s) -> ``{sample id: {category: pred or None}}``."""
    out: dict[str, dict[str, str | None]] = {}
    for f in _response_files(path, "VQA_response.json"):
        data: Any = read_json(f, "VRU-Accident VQA responses")
        if not isinstance(data, dict):
            raise TaskDataError(f"{f}: expected an object keyed by video")
        for key, cats in data.items():
            if not isinstance(cats, dict):
                raise TaskDataError(f"{f}: video {key!r}: expected an object of categories")
            preds: dict[str, str | None] = {}
            for cat, v in cats.items():
                pred = v.get("pred") if isinstance(v, dict) else v
                if pred is not None and not isinstance(pred, str):
                    raise TaskDataError(f"{f}: video {key!r}: category {cat!r}: 'pred' must be "
                                        f"a string or null")
                preds[cat] = pred
            out[sample_id(key)] = preds
    return out


def read_caption_responses(path: Path) -> dict[str, str | None]:
    """``*_Dense_Captioning_response.json`` file(s) -> ``{sample id: caption or None}``."""
    out: dict[str, str | None] = {}
    for f in _response_files(path, "Dense_Captioning_response.json"):
        data: Any = read_json(f, "VRU-Accident caption responses")
        if not isinstance(data, dict):
            raise TaskDataError(f"{f}: expected an object keyed by video")
        for key, v in data.items():
            pred = v.get("pred") if isinstance(v, dict) else v
            if pred is not None and not isinstance(pred, str):
                raise TaskDataError(f"{f}: video {key!r}: 'pred' must be a string or null")
            out[sample_id(key)] = pred
    return out
