"""Harness overhead per video: the ``constant`` method on a UCF-Crime-sized index.

The index is written in UCF-Crime's native annotation format (290 test videos, the real
videos' frame counts when ``../shared/data/reference`` is present, else 3,834 frames each), so
the run exercises the real task loader, run store (one fsynced record per video), evaluation
and index, without decoding any video (the constant method reads none).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import emit
from harness.config import RunConfig
from harness.runner import run

REFERENCE = Path(os.environ.get("VAD_EVAL_REFERENCE",
                                Path(__file__).resolve().parents[2] / "shared/data/reference"))


def write_index(root: Path) -> int:
    counts = REFERENCE / "ucf_crime/DERIVED_ucf_test_frame_counts.tsv"
    rows: list[tuple[str, int, str, list[int]]] = []
    if counts.is_file():
        for line in counts.read_text().splitlines()[1:]:
            parts = line.split("\t")
            cell = parts[3] if len(parts) > 3 else ""
            ivs = [int(x) for x in cell.replace(";", ",").split(",") if x.strip()]
            rows.append((parts[0], int(parts[1]), parts[2], ivs))
    else:
        for i in range(290):
            cls = "Normal" if i % 2 else "Fighting"
            rows.append((f"{cls}{i:03d}_x264", 3834, cls, [] if i % 2 else [100, 900]))
    with (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").open("w") as ann, \
            (root / "anomaly_test.txt").open("w") as idx:
        for name, n, cls, ivs in rows:
            pad = (ivs + [-1, -1, -1, -1])[:4]
            ann.write(f"{name}.mp4  {cls}  " + "  ".join(map(str, pad)) + "\n")
            idx.write(f"{name} 0 {n - 1} 0\n")
    return len(rows)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ucf"
        root.mkdir()
        n = write_index(root)
        cfg = RunConfig(method="constant", task="ucf_crime", data_root=str(root), split="test",
                        out=str(Path(tmp) / "runs"), task_args={"bootstrap": 200})
        t0 = time.perf_counter()
        res = run(cfg, progress=False)
        total = time.perf_counter() - t0
        info = json.loads((res.run_dir / "run_info.json").read_text())
        per_video = info["mean_s_per_video"]
        emit("harness.overhead_per_video.constant_ucf_index", per_video * 1000, "ms", "< 20",
             per_video < 0.020, videos=n)
        emit("harness.run_total.constant_ucf_index", total, "s", "reference", None, videos=n)


if __name__ == "__main__":
    main()
