"""Caption metrics (pycocoevalcap BLEU-1..4, METEOR, ROUGE-L, CIDEr) on HIVAU-70K's 3,339 test
answers: one corpus call with PTB tokenisation, timed, and the Java start-ups it made.

References are the ``anwser`` texts of ``hivau70k/merge_instruction_test_final.jsonl`` in the
reference directory (``VAD_EVAL_REFERENCE``, default ``../shared/data/reference``); each
hypothesis is its reference with the words shuffled (fixed seed), so every metric has
partial overlaps to count. Java start-ups are counted by wrapping ``subprocess.Popen`` while
the call runs: METEOR should start once for the corpus, the PTB tokenizer once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import emit
from tasks.metrics.text import coco_caption_scores, java_available

NAME = "caption_metrics_hivau_3339"
REPO_ROOT = Path(__file__).resolve().parents[1]


def reference_file() -> Path:
    root = Path(os.environ.get("VAD_EVAL_REFERENCE", REPO_ROOT.parent / "shared/data/reference"))
    return root / "hivau70k" / "merge_instruction_test_final.jsonl"


def load_corpus(path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    rng = random.Random(0)
    refs: dict[str, list[str]] = {}
    hyps: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            key = str(row["id"])
            words = str(row["anwser"]).split()
            rng.shuffle(words)
            refs[key] = [str(row["anwser"])]
            hyps[key] = " ".join(words)
    return refs, hyps


class _JavaStarts:
    """Counts the ``java`` processes started through ``subprocess.Popen`` while active."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self._orig: Any = None

    def __enter__(self) -> _JavaStarts:
        self._orig = subprocess.Popen
        orig, commands = self._orig, self.commands

        class Counting(orig):  # type: ignore[misc, valid-type]
            def __init__(self, args: Any, *a: Any, **k: Any) -> None:
                cmd = [str(x) for x in args] if isinstance(args, list | tuple) else [str(args)]
                if cmd and Path(cmd[0]).name == "java":
                    commands.append(cmd)
                super().__init__(args, *a, **k)

        subprocess.Popen = Counting  # type: ignore[misc]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen = self._orig  # type: ignore[misc]

    def count(self, needle: str) -> int:
        return sum(any(needle in part for part in cmd) for cmd in self.commands)


def main() -> None:
    path = reference_file()
    if not path.is_file():
        emit(NAME, 0.0, "s", "< 60", None, skipped=f"reference file not found: {path}")
        return
    reason = java_available()
    if reason is not None:
        emit(NAME, 0.0, "s", "< 60", None, skipped=reason)
        return
    refs, hyps = load_corpus(path)
    with _JavaStarts() as java:
        t0 = time.perf_counter()
        result = coco_caption_scores(refs, hyps)
        dt = time.perf_counter() - t0
    scores = {k: round(v, 4) for k, v in result.corpus.items()}
    emit(NAME, dt, "s", "< 60", dt < 60.0, rows=len(hyps), scores=scores)
    meteor = java.count("meteor-1.5.jar")
    emit(
        "caption_metrics_hivau_3339.meteor_java_starts", meteor, "processes", "== 1",
        meteor == 1, ptb_tokenizer_starts=java.count("PTBTokenizer"),
    )  # fmt: skip
    task_scoring(path, hyps)


def task_scoring(path: Path, hyps: dict[str, str]) -> None:
    """The ``hivau`` task's own evaluation of the 3,339 rows: 3 levels + 7 level/task groups,
    each its own corpus, one PTB call and one METEOR process for all."""
    from tasks.hivau_task import HivauTask

    task = HivauTask()
    samples = task.load(path.parent, "test")
    preds = {s.video_id: {"responses": {q.qid: hyps[q.qid] for q in s.queries}}
             for s in samples}
    with _JavaStarts() as java:
        t0 = time.perf_counter()
        result = task.evaluate(samples, preds)
        dt = time.perf_counter() - t0
    emit("hivau_task_scoring_3339", dt, "s", "< 60", dt < 60.0,
         groups=len(result["group_sizes"]), metrics=len(result["metrics"]),
         meteor_java_starts=java.count("meteor-1.5.jar"))


if __name__ == "__main__":
    main()
