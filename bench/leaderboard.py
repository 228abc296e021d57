"""The leaderboard's heavy paths at UCF-Crime scale.

* ``leaderboard.paired_bootstrap``: the paired video bootstrap of two runs' ROC-AUC difference
  (1000 resamples) on 290 videos / 1.11 M frames (run A: window-level scores, one value per
  16 frames as the window protocol produces; run B: continuous scores, the slow case), as a
  ratio to the two runs' own single-run bootstrap intervals computed separately: pairing
  evaluates both runs on shared resamples, so it should cost no more than those two
  (goal <= 1.25).
* ``leaderboard.first_render``: the app's first full render (AppTest, all tabs) with 1,000
  measured runs in the index plus the paper-reported rows (goal < 10 s).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import emit
from leaderboard.compare import paired_bootstrap
from leaderboard.run_data import VideoTrace
from tasks.metrics.bootstrap import BootstrapEntry, BootstrapSpec, bootstrap_ci
from tasks.metrics.pool import FramePool


def _traces(rng: np.random.Generator, n_videos: int, frames: int, shift: float
            ) -> list[VideoTrace]:
    out = []
    for v in range(n_videos):
        labels = np.zeros(frames, dtype=np.uint8)
        if v % 2:
            a = int(rng.integers(0, frames // 2))
            labels[a:a + frames // 4] = 1
        win = rng.random(frames // 16 + 1) * 0.7 + shift
        scores = np.repeat(win, 16)[:frames] + labels * 0.3
        out.append(VideoTrace(f"v{v}", "Normal", 30.0, labels, scores, ()))
    return out


def bench_paired() -> None:
    rng = np.random.default_rng(0)
    a = _traces(rng, 290, 3834, 0.0)
    b = [VideoTrace(t.video_id, t.category, t.fps, t.labels,
                    t.scores + rng.normal(0, 0.1, t.scores.shape), ()) for t in a]
    t0 = time.perf_counter()
    for run in (a, b):
        pool = FramePool.build([t.labels for t in run], [t.scores for t in run])
        bootstrap_ci({"": BootstrapEntry(pool, roc_only=True)}, BootstrapSpec(1000, 0))
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = paired_bootstrap(a, b, "roc_auc", n=1000, seed=0)
    paired = time.perf_counter() - t0
    emit("leaderboard.paired_bootstrap_vs_two_single", paired / single, "ratio", "<= 1.25",
         paired / single <= 1.25, paired_s=round(paired, 3), two_single_s=round(single, 3),
         videos=290, frames=290 * 3834, diff=round(d.diff, 5))


def bench_render() -> None:
    from streamlit.testing.v1 import AppTest

    from harness import index

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        rng = np.random.default_rng(1)
        for i in range(1000):
            cfg = {"task": ["ucf_crime", "xd_violence", "complexvad"][i % 3],
                   "method": f"m{i % 40}", "model": f"bb{i % 7}", "engine": "hf",
                   "split": "test", "engine_info": {"model": f"bb{i % 7}", "parameters": 7e9}}
            auc = float(rng.random())
            index.register_run(runs, runs / f"r{i:04d}", cfg, status="done",
                               metrics={"roc_auc": auc, "pr_auc": auc / 2})
        os.environ["VAD_EVAL_RUNS"] = str(runs)
        app = str(Path(__file__).resolve().parents[1] / "leaderboard" / "app.py")
        t0 = time.perf_counter()
        at = AppTest.from_file(app, default_timeout=120).run()
        dt = time.perf_counter() - t0
        assert not at.exception, at.exception
    emit("leaderboard.first_render_1000_runs", dt, "s", "< 10", dt < 10.0, runs=1000)


def main() -> None:
    bench_paired()
    bench_render()


if __name__ == "__main__":
    main()
