"""Writing the annotation files of the three VAD layouts (see the package docstring), and
``meta.json`` for all datasets (the language datasets' own files are written by ``vru.py``,
``hivau.py``, ``vad_reasoning.py`` and ``vane.py``).

All files are UTF-8 with ``\\n`` line ends and a trailing newline. Intervals are 0-based frame
indices with inclusive ends, as in the original datasets' files.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.sample_world.catalog import VideoSpec

META_FILE = "meta.json"
META_FORMAT = "vad-eval/sample-world-meta-v1"
COMPLEXVAD_FORMAT = "vad-eval/complexvad-v1"


def _lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _ucf(root: Path, specs: list[VideoSpec]) -> None:
    test = [s for s in specs if s.split == "test"]
    train = [s for s in specs if s.split == "train"]
    _lines(root / "Anomaly_Test.txt", [s.relpath for s in test])
    _lines(root / "Anomaly_Train.txt", [s.relpath for s in train])
    rows = []
    for s in test:
        bounds = [b for ev in s.events for b in (ev.start, ev.end)]
        bounds += [-1] * (4 - len(bounds))
        rows.append("  ".join([f"{s.name}.mp4", s.label, *map(str, bounds)]))
    _lines(root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt", rows)


def _xd(root: Path, specs: list[VideoSpec]) -> None:
    rows = [
        " ".join([s.name, *(f"{ev.start} {ev.end}" for ev in s.events)])
        for s in specs
        if s.split == "test" and s.anomalous
    ]
    _lines(root / "annotations.txt", rows)
    _lines(root / "train_list.txt", [s.relpath for s in specs if s.split == "train"])


def _complexvad(root: Path, specs: list[VideoSpec]) -> None:
    for split in ("test", "train"):
        videos = [
            {
                "name": s.name,
                "path": s.relpath,
                "num_frames": s.num_frames,
                "fps": s.fps,
                "label": s.label,
                "anomalies": [
                    {"start": ev.start, "end": ev.end, "type": ev.kind} for ev in s.events
                ]
                if split == "test"
                else [],
            }
            for s in specs
            if s.split == split
        ]
        doc = {
            "format": COMPLEXVAD_FORMAT,
            "fps": specs[0].fps,
            "end_inclusive": True,
            "videos": videos,
        }
        (root / f"complexvad_{split}.json").write_text(
            json.dumps(doc, indent=1) + "\n", encoding="utf-8"
        )


def write_meta(root: Path, dataset: str, seed: int, codec: str, specs: list[VideoSpec]) -> None:
    """``meta.json``: per-video frame counts and labels (no intervals), written last.

    Per video: ``path`` (an MP4 file, or for VANE a folder of JPEG frames), ``name``, ``split``,
    native ``label``, and ``num_frames`` and ``fps`` of what is stored there; ``effect_scale``
    when it is not 1.
    """
    doc = {
        "format": META_FORMAT,
        "dataset": dataset,
        "seed": seed,
        "codec": codec,
        "fps": specs[0].stored_fps,
        "end_inclusive": True,
        "videos": [
            {
                "path": s.relpath,
                "name": s.name,
                "split": s.split,
                "label": s.label,
                "num_frames": s.stored_frames,
                "fps": s.stored_fps,
                **({"effect_scale": s.effect_scale} if s.effect_scale != 1.0 else {}),
            }
            for s in specs
        ],
    }
    (root / META_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def write_layout(root: Path, dataset: str, specs: list[VideoSpec]) -> None:
    """Write the native annotation / list files of ``dataset`` under ``root``."""
    writers = {"ucf_crime": _ucf, "xd_violence": _xd, "complexvad": _complexvad}
    writers[dataset](root, specs)
