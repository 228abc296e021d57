"""HyCoVAD's validator flow with scripted engines: which frames are captioned, how many requests
each stage sends, how rules and decisions reach the record, and the carry / memory / smoothing
glue of the method (hand-computed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.engines.base import Completion, Engine, ImagePart, Request, Response
from methods.hycovad.method import carry, carry_flags, squash
from methods.hycovad.prompts import load_prompts
from methods.hycovad.validator import (
    Validator,
    ValidatorConfig,
    rule_frame_positions,
    window_positions,
)

# The paper's Appendix C.2 rule set output (### headers), as an LLM would answer P_A.
RULES_OUT = """### RULES FOR NORMAL ACTIVITIES OR OBJECTS
- Vehicles and pedestrians must adhere to traffic signals and pedestrian crossings.
- Skateboarders and bikers are allowed in designated areas with proper safety gear.

### RULES FOR ANOMALY ACTIVITIES OR OBJECTS
- Vehicles must not exceed speed limits or drive recklessly.
- Skateboarders and bikers must avoid colliding with others or stationary objects.
"""


class ScriptedVLM(Engine):
    """Captions each image by its mean brightness (frames are built with distinct values)."""

    name = "scripted-vlm"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            img = next(p for p in r.messages[-1].content if isinstance(p, ImagePart)).image
            v = int(round(float(img.mean())))
            self.calls.append(v)
            text = (f"A person walks on the sidewalk near frame {v}. "
                    + ("Two people are fighting. " if v in (30, 40) else "Nothing else happens. ")
                    + "A car is parked.")
            out.append(Response(r.request_id, [Completion(text)]))
        return out


class ScriptedLLM(Engine):
    """Answers P_R with a free-form rule list, P_A with the paper's rule set, and P_D with Yes
    when the scene mentions fighting, an unreadable answer for frame 50, else No."""

    name = "scripted-llm"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            prompt = "".join(getattr(p, "text", "") for p in r.messages[-1].content)
            self.prompts.append(prompt)
            if "Combine them into one final set of rules" in prompt:
                text = RULES_OUT
            elif "Generate a set of rules" in prompt:
                text = ("1. Normal: people walk on the sidewalk.\n"
                        "2. Anomaly: people fighting each other.")
            elif "fighting" in prompt:
                text = ("Anomaly: Yes\nBroken Rules:\n- Skateboarders and bikers must avoid "
                        "colliding with others or stationary objects.")
            elif "frame 50." in prompt:
                text = "I cannot tell."
            else:
                text = "Anomaly: No\nBroken Rules: None"
            out.append(Response(r.request_id, [Completion(text)]))
        return out


def _frames(n: int) -> dict[int, np.ndarray]:
    """Grid position p -> a 4x4 frame of constant value 10 * p."""
    return {p: np.full((4, 4, 3), 10 * p, np.uint8) for p in range(n)}


def test_positions_hand_cases() -> None:
    assert rule_frame_positions(30, 20).tolist() == sorted(set(
        np.linspace(0, 29, 20).round().astype(int).tolist()))
    assert rule_frame_positions(5, 20).tolist() == [0, 1, 2, 3, 4]
    assert list(window_positions(5, 30, 10)) == list(range(0, 10))  # 5-5 .. 5+4
    assert list(window_positions(1, 30, 10)) == list(range(0, 6))
    assert list(window_positions(28, 30, 3)) == [27, 28, 29]
    assert list(window_positions(7, 30, 1)) == [7]


def test_validator_flow_with_scripted_engines() -> None:
    vlm, llm = ScriptedVLM(), ScriptedLLM()
    cfg = ValidatorConfig(refine=False, rule_frames=3, batch_size=2)
    val = Validator(cfg, load_prompts(None), vlm, llm, None, None)
    grid = np.arange(0, 100, 10)
    suspects = [3, 4, 5, 8]
    need = val.needed_positions(len(grid), suspects)
    assert need.tolist() == [0, 3, 4, 5, 8, 9]  # rule frames 0, 4 (4.5 -> 4), 9 + suspects
    res = val.validate(grid, suspects, {p: f for p, f in _frames(10).items() if p in need})
    assert sorted(vlm.calls) == [0, 30, 40, 50, 80, 90]  # each needed frame captioned once
    assert res.requests == {"captions": 6, "rules": 3, "aggregate": 1, "decisions": 4}
    assert res.rules_source == "llm"
    assert "Vehicles must not exceed speed limits or drive recklessly." in res.rules
    assert res.decisions == {3: 1, 4: 1, 5: 0, 8: 0}
    assert res.unreadable == 1  # frame 50's answer
    by_frame = {e["frame"]: e for e in res.explanations}
    assert by_frame[30]["broken_rules"] == [
        "Skateboarders and bikers must avoid colliding with others or stationary objects."]
    assert by_frame[50]["anomaly"] is None and by_frame[80]["anomaly"] is False
    # the decision prompts carry the aggregated rules and the frame's own caption
    decisions = [p for p in llm.prompts if "Is this an anomaly scene?" in p]
    assert len(decisions) == 4 and all("drive recklessly" in p for p in decisions)


def test_rules_off_sends_no_rule_requests() -> None:
    vlm, llm = ScriptedVLM(), ScriptedLLM()
    val = Validator(ValidatorConfig(rules=False, refine=False), load_prompts(None), vlm, llm,
                    None, None)
    grid = np.arange(0, 60, 10)
    res = val.validate(grid, [3], {3: _frames(6)[3]})
    assert res.requests == {"captions": 1, "decisions": 1}
    assert res.rules == "" and res.rules_source == "off" and res.decisions == {3: 1}


def test_refinement_picks_the_caption_aligned_with_the_frame() -> None:
    """With a joint embedder, the suspect's caption is replaced by the window caption whose
    embedding is closest to the frame's visual embedding."""

    class Joint:
        def embed(self, texts: list[str]) -> np.ndarray:  # one axis per mentioned frame value
            out = np.zeros((len(texts), 16), np.float32)
            for i, t in enumerate(texts):
                v = int(t.split("near frame ")[1].split(".")[0]) if "near frame " in t else 0
                out[i, v // 10] = 1.0
            return out

        def embed_images(self, frames: np.ndarray) -> np.ndarray:
            # the frame at grid position 4 "looks like" position 6
            out = np.zeros((len(frames), 16), np.float32)
            for i, f in enumerate(frames):
                p = int(f.mean()) // 10
                out[i, 6 if p == 4 else p] = 1.0
            return out

    joint = Joint()
    cfg = ValidatorConfig(rules=False, refine=True, refine_window=5)
    val = Validator(cfg, load_prompts(None), ScriptedVLM(), ScriptedLLM(), joint,
                    joint.embed_images, joint=True)
    grid = np.arange(0, 100, 10)
    need = val.needed_positions(len(grid), [4])
    assert need.tolist() == [2, 3, 4, 5, 6]
    res = val.validate(grid, [4], {p: f for p, f in _frames(10).items() if p in need})
    assert res.refined == 1
    assert res.explanations[0]["caption_frame"] == 60


def test_carry_memory_and_squash_hand_values() -> None:
    grid = np.array([0, 10, 20])
    out = carry(grid, np.array([0.1, 0.5, 0.9]), 25)
    assert out.tolist() == [0.1] * 10 + [0.5] * 10 + [0.9] * 5
    assert carry_flags(np.array([0, 1, 0, 0, 0, 1, 0]), 2).tolist() == [0, 1, 1, 1, 0, 1, 1]
    assert carry_flags(np.array([1, 0, 0]), 0).tolist() == [1, 0, 0]
    assert squash(np.array([0.0, 1.0, 3.0])).tolist() == [0.0, 0.5, 0.75]
