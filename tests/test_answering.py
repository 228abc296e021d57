"""The shared answering routine and the LLM judge, against scripted engines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    Request,
    Response,
    TextPart,
    VideoPart,
)
from methods.answering import AnswerOverrides, answer_queries
from methods.base import RunContext
from tasks.base import Query, VideoSample
from tasks.text_task import FramePlan
from tasks.vru_tasks import VruAccidentCaptionTask
from tests.videos import frame_ids, write_counting_video


class EchoEngine(Engine):
    """Answers with the source-frame ids it was shown, and records every request."""

    name = "echo"
    capabilities = EngineCapabilities()

    def __init__(self, **_: Any) -> None:
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            self.requests.append(r)
            video = r.messages[-1].content[0]
            assert isinstance(video, VideoPart)
            ids = frame_ids(video.frames)
            out.append(Response(r.request_id, [Completion(" ".join(map(str, ids)))]))
        return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_counting_video(tmp_path_factory.mktemp("a") / "v.mp4", 120)


def test_answer_queries_samples_the_span_once_per_sample(video: Path) -> None:
    queries = (Query("q1", "first?", max_new_tokens=10),
               Query("q2", "second?", max_new_tokens=500, temperature=0.1, top_p=0.9,
                     system="sys"))
    sample = VideoSample("v", 0, 30.0, path=video, span=(40, 80), queries=queries)
    engine = EchoEngine()
    ctx = RunContext(batch_size=1, frame_plan=FramePlan(4, "arange"))
    rec = answer_queries(engine, sample, ctx, overrides=AnswerOverrides(cap_new_tokens=64))
    # arange(40, 80, 10) -> 40, 50, 60, 70: both queries see the same frames
    assert rec["frames"]["indices"] == [40, 50, 60, 70]
    assert rec["responses"] == {"q1": "40 50 60 70", "q2": "40 50 60 70"}
    r1, r2 = engine.requests
    assert r1.sampling.max_new_tokens == 10 and r2.sampling.max_new_tokens == 64
    assert (r2.sampling.temperature, r2.sampling.top_p) == (0.1, 0.9)
    assert r2.messages[0].role == "system" and r1.messages[0].role == "user"
    assert isinstance(r1.messages[-1].content[1], TextPart)
    assert r1.messages[-1].content[1].text == "first?"
    part = r1.messages[-1].content[0]
    assert isinstance(part, VideoPart)
    assert part.fps == pytest.approx(4 / (31 / 30))  # 4 frames over frames 40..70 at 30 fps


def test_answer_queries_counts_frames_when_unannotated(video: Path) -> None:
    sample = VideoSample("v", 0, 0.0, path=video, queries=(Query("q", "?"),))
    rec = answer_queries(EchoEngine(), sample, RunContext(frame_plan=FramePlan(3, "linspace")))
    assert rec["frames"]["indices"] == [0, 59, 119]  # linspace(0, 119, 3) over 120 frames


class ScriptedJudge(Engine):
    """A judge that rates 0.9 when the answer repeats the reference word for word."""

    name = "scripted-judge"
    capabilities = EngineCapabilities()

    def __init__(self, **kwargs: Any) -> None:
        self.model = kwargs.get("model")

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            text = r.messages[-1].content[0]
            assert isinstance(text, TextPart)
            body = text.text
            ref = body.split("Reference description of the video:\n", 1)[1].split("\n\n")[0]
            ans = body.split("Answer to grade:\n", 1)[1].split("\n\n")[0]
            if ans == "garbage":
                verdict = "I cannot rate this."
            else:
                s = 0.9 if ans == ref else 0.1
                verdict = f'```json\n{{"reasonability": {s}, "detail": {s}, "consistency": {s}}}'
            out.append(Response(r.request_id, [Completion(verdict)]))
        return out

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "model": self.model}


def test_llm_judge_is_recorded_and_averaged() -> None:
    task = VruAccidentCaptionTask(judge=True, judge_engine="tests.test_answering:ScriptedJudge",
                                  judge_model="judge-x")
    samples = [VideoSample(f"S/v{i}", 0, 0.0, queries=(Query("caption", "describe"),),
                           references={"caption": f"a car hits person {i}"}) for i in range(3)]
    preds = {"S/v0": {"responses": {"caption": "a car hits person 0"}},
             "S/v1": {"responses": {"caption": "a cat sleeps"}},
             "S/v2": {"responses": {"caption": "garbage"}}}
    res = task.evaluate(samples, preds)
    m = res["metrics"]
    assert m["judge_reasonability"] == pytest.approx(0.5)  # (0.9 + 0.1) / 2
    assert res["judge"]["judge_unparsed"] == 1 and res["judge"]["judged"] == 2
    assert res["judge"]["model"] == "judge-x"
    assert "{reference}" in res["judge"]["prompt"]["user"]
    assert res["protocol"]["judge"]["model"] == "judge-x"
    assert np.isfinite(m["rouge1_f"])
