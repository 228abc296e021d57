"""Anom-π's batched multi-turn rollouts (:mod:`methods.anom_pi.rollout`).

A scripted engine (outputs chosen per request id, A/B log-probabilities given) checks the
dialogue against values worked out by hand from :mod:`methods.anom_pi.env`'s rules on the
272-frame sample video ``Fighting001_x264``: windows, views, frame counts, the letters offered,
think turns, the budgets, unreadable outputs and the follow-up question. The tiny Qwen2-VL
checks that batching does not change a rollout (greedy and sampled) and that iDPO's
trajectory log-probabilities are the sums of the log-probabilities the engine sampled with.

View arithmetic (``frames_per_view`` 4, "mid" sampler: ``start + int((i + 0.5) * width / 4)``)
for N = 272:

* [0, 272)   -> 34, 102, 170, 238        * [136, 272) -> 153, 187, 221, 255
* [0, 136)   -> 17, 51, 85, 119          * [136, 204) -> 144, 161, 178, 195
* [102, 238) -> 119, 153, 187, 221       * [34, 170)  -> 51, 85, 119, 153
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    Message,
    Request,
    Response,
    TextPart,
    VideoPart,
)
from harness.engines.hf import HFEngine
from harness.registry import TASKS
from harness.video import count_frames
from methods.anom_pi.env import EnvConfig
from methods.anom_pi.prompts import EVENTS, Prompts
from methods.anom_pi.rollout import Decoding, Reviewer, ReviewVideo, Trajectory, with_sampling

VID = "Fighting001_x264"  # 272 frames at 30 fps in the sample world
Entry = str | tuple[str, float, float]  # think text | (action text, log P(A), log P(B))


# -- fixtures and fakes ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def videos() -> list[ReviewVideo]:
    import tasks.catalog  # noqa: F401  (registers the tasks)

    out = []
    for s in TASKS.get("ucf_crime")().load(None, "sample"):  # type: ignore[operator]
        n = s.num_frames or count_frames(s.path)
        out.append(ReviewVideo(s.video_id, s.path, n, s.fps, 0, int(s.is_anomalous)))
    return out


@pytest.fixture(scope="module")
def fighting(videos: list[ReviewVideo]) -> ReviewVideo:
    v = next(v for v in videos if v.video_id == VID)
    assert (v.num_frames, v.fps) == (272, 30.0)  # the hand-computed values below rely on it
    return v


def _is_action(req: Request) -> bool:
    sp = req.sampling
    return bool(sp.allowed_tokens) or sp.max_new_tokens <= Decoding().action_tokens


class ScriptedEngine(Engine):
    """Answers each request with ``script[request_id]`` (else ``fallback(request)``); action
    turns get ``target_logprobs = [{"A": la, "B": lb}]``. Records every request."""

    name = "scripted"
    capabilities = EngineCapabilities(logprobs=True)

    def __init__(self, script: dict[str, Entry],
                 fallback: Callable[[Request], Entry] | None = None) -> None:
        self.script, self.fallback = dict(script), fallback
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for req in requests:
            self.requests.append(req)
            entry = self.script.get(req.request_id)
            if entry is None:
                assert self.fallback is not None, f"no script for {req.request_id}"
                entry = self.fallback(req)
            text = entry if isinstance(entry, str) else entry[0]
            comp = Completion(text, token_ids=[ord(c) for c in text])
            if _is_action(req):
                la, lb = (-1.0, -1.0) if isinstance(entry, str) else entry[1:]
                comp.target_logprobs = [{"A": la, "B": lb}]
            out.append(Response(req.request_id, [comp]))
        return out

    def sent(self) -> dict[str, Request]:
        return {r.request_id: r for r in self.requests}


def _reviewer(engine: Engine, constrained: bool = True, think_tokens: int = 48,
              **env: int) -> Reviewer:
    cfg = EnvConfig(**{"frames_per_view": 4, "max_frames": 16, "max_turns": 6, **env})
    return Reviewer(engine, cfg, Prompts(), Decoding(constrained=constrained,
                                                     think_tokens=think_tokens),
                    max_pixels=64 * 64, thinking=True, batch_size=8)


def _last_user(req: Request) -> tuple[Any, ...]:
    msg = req.messages[-1]
    assert msg.role == "user"
    return msg.content


def _view(req: Request) -> tuple[int, ...]:
    """The frame indices of the video part of a request's last user message."""
    parts = [p for p in _last_user(req) if isinstance(p, VideoPart)]
    assert len(parts) == 1
    return parts[0].frame_indices


def _text(req: Request) -> str:
    parts = [p for p in _last_user(req) if isinstance(p, TextPart)]
    assert len(parts) == 1
    return parts[0].text


def _rid(member: int, turn: int, vid: str = VID) -> str:
    return f"{vid}#{member}.{turn}"


# -- scripted dialogues ----------------------------------------------------------------------
def test_operators_windows_views_and_menus(fighting: ReviewVideo) -> None:
    # G (zoom 2nd half), F (zoom 1st half), E (expand), D (backtrack), A (anomalous)
    script: dict[str, Entry] = {
        _rid(0, 0): ("G", -1.0, -0.5), _rid(0, 1): ("F", -0.7, -0.9),
        _rid(0, 2): ("E", -2.0, -0.1), _rid(0, 3): ("D", -0.3, -1.4),
        _rid(0, 4): ("A", -0.2, -1.7)}
    eng = ScriptedEngine(script)
    trajs, errors = _reviewer(eng).run([fighting])
    assert errors == {} and len(trajs) == 1
    t = trajs[0]
    reqs = eng.requests
    assert [r.request_id for r in reqs] == [_rid(0, k) for k in range(5)]

    # letters offered: turn 0 no D (start 0) nor E (whole video); turns 1-3 everything;
    # turn 4: no think (3 turns needed), F/G would decode 4/2 new frames past 16 (15 seen)
    allowed = [("A", "B", "C", "F", "G"), tuple("ABCDEFG"), tuple("ABCDEFG"), tuple("ABCDEFG"),
               ("A", "B", "D", "E")]
    assert [r.sampling.allowed_tokens for r in reqs] == allowed
    for r in reqs:
        assert r.sampling.max_new_tokens == 1 and r.sampling.target_tokens == ("A", "B")
        assert r.sampling.stop == () and r.sampling.temperature == 0.0
        assert r.messages[0].role == "system"

    # the view of each request's last user message: the current window's 4 centres
    views = [(34, 102, 170, 238), (153, 187, 221, 255), (144, 161, 178, 195),
             (119, 153, 187, 221), (51, 85, 119, 153)]
    assert [_view(r) for r in reqs] == views
    for r in reqs:
        frames = next(p for p in _last_user(r) if isinstance(p, VideoPart)).frames
        assert frames.shape[0] == 4 and frames.shape[1] * frames.shape[2] <= 64 * 64
    # the whole dialogue so far: system + (user, assistant) per earlier turn + the new user
    assert [len(r.messages) for r in reqs] == [2, 4, 6, 8, 10]
    assert [m.content for m in reqs[4].messages[2::2]] == [(TextPart(c),) for c in "GFED"]
    assert _text(reqs[0]) == ("The whole video at a glance. Frames 34, 102, 170, 238 of 272 "
                              "(window 0-272, 0.0-9.1 s). Left: 12 frames, 6 turns. "
                              "Choose one of A, B, C, F, G.")
    assert _text(reqs[4]) == ("You went back in time. Frames 51, 85, 119, 153 of 272 "
                              "(window 34-170, 1.1-5.7 s). Left: 1 frames, 2 turns. "
                              "Choose one of A, B, D, E.")
    assert _text(reqs[2]).startswith(EVENTS["zoom"]) and _text(reqs[3]).startswith(
        EVENTS["expand"])

    s = t.summary()
    steps = s["steps"]
    assert [st["code"] for st in steps] == ["G", "F", "E", "D", "A"]
    assert [st["action"] for st in steps] == ["zoom:1", "zoom:0", "expand", "backtrack",
                                              "answer:1"]
    assert [st["window"] for st in steps] == [[136, 272], [136, 204], [102, 238], [34, 170],
                                              [34, 170]]
    # new frames: 4; 4; 1 (119; 153/187/221 seen); 2 (51, 85); 0
    assert [st["new_frames"] for st in steps] == [4, 4, 1, 2, 0]
    assert [st["legal"] for st in steps] == [list(a) for a in allowed]
    # confidence = 1 / (1 + exp(lb - la)), by hand
    conf = [0.3775406687981454, 0.5498339973124778, 0.1301084743629978, 0.7502601055951177,
            0.8175744761936437]
    assert [st["confidence"] for st in steps] == pytest.approx(conf, abs=1e-12)
    assert t.confidences() == pytest.approx(conf, abs=1e-12)
    assert s["answer"] == 1 and s["p_abnormal"] == pytest.approx(0.8175744761936437)
    assert s["forced"] is False and s["invalid"] == 0 and s["turns"] == 5
    assert s["frames_decoded"] == 15 and s["window"] == [34, 170]
    assert t.state.seen == [34, 102, 170, 238, 153, 187, 221, 255, 144, 161, 178, 195, 119, 51,
                            85]
    assert [v for v, _ in s["views"]] == [[0, 272], [136, 272], [136, 204], [102, 238],
                                          [34, 170]]
    assert [tuple(i) for _, i in s["views"]] == views
    assert [a.code for a in t.actions()] == ["G", "F", "E", "D", "A"]


def test_think_turn(fighting: ReviewVideo) -> None:
    script: dict[str, Entry] = {_rid(0, 0): ("C", -1.0, -1.0), _rid(0, 1): "the man runs",
                                _rid(0, 2): ("B", -0.4, -0.1)}
    eng = ScriptedEngine(script)
    (t,), _ = _reviewer(eng, think_tokens=20).run([fighting])
    r0, r1, r2 = eng.requests
    # the request after C: free text, think_tokens long, the think prompt as the last message
    assert r1.sampling.allowed_tokens == () and r1.sampling.max_new_tokens == 20
    assert r1.sampling.target_tokens == ()
    assert _last_user(r1) == (TextPart(Prompts().think),)
    assert [m.role for m in r1.messages] == ["system", "user", "assistant", "user"]
    # the reasoning is in the next request's dialogue; no new frames, no event text
    assert [m.role for m in r2.messages] == ["system", "user", "assistant", "user",
                                             "assistant", "user"]
    assert r2.messages[4].content == (TextPart("the man runs"),)
    assert r2.messages[2].content == (TextPart("C"),)
    assert _text(r2) == ("Frames 34, 102, 170, 238 of 272 (window 0-272, 0.0-9.1 s). Left: 12 "
                         "frames, 4 turns. Choose one of A, B, C, F, G.")
    assert len(_last_user(r2)) == 1  # no video part
    assert r2.sampling.allowed_tokens == ("A", "B", "C", "F", "G")
    s = t.summary()
    assert s["turns"] == 3  # C, the reasoning and B are three assistant messages
    assert [st["kind"] for st in s["steps"]] == ["action", "think", "action"]
    assert s["steps"][1] == {"kind": "think", "text": "the man runs"}
    assert [s["steps"][0]["code"], s["steps"][2]["code"]] == ["C", "B"]
    assert t.turns[1].token_ids == [ord(c) for c in "the man runs"]
    assert t.turns[1].allowed == ()
    # 1 / (1 + exp(-0.1 + 0.4)) and 1 / (1 + exp(0))
    assert t.confidences() == pytest.approx([0.5, 0.425557483188341], abs=1e-12)
    assert s["answer"] == 0 and s["p_abnormal"] == pytest.approx(0.425557483188341)
    assert s["forced"] is False and s["frames_decoded"] == 4 and s["window"] == [0, 272]


def test_turn_budget_forces_an_answer(fighting: ReviewVideo) -> None:
    # the highest letter offered: an operator whenever one is
    eng = ScriptedEngine({}, fallback=lambda r: (max(r.sampling.allowed_tokens), -1.0, -1.0))
    (t,), _ = _reviewer(eng, max_turns=3).run([fighting])
    assert [r.sampling.allowed_tokens for r in eng.requests] == [
        ("A", "B", "C", "F", "G"),  # think fits (3 turns left)
        ("A", "B", "D", "E", "F", "G"),  # in [136, 272): D and E apply; no room for think
        ("A", "B")]  # the last turn
    s = t.summary()
    assert [st["code"] for st in s["steps"]] == ["G", "G", "B"]
    assert s["window"] == [204, 272] and s["frames_decoded"] == 12  # 212, 229, 246, 263 added
    assert s["forced"] is True and s["answer"] == 0 and s["turns"] == 3
    assert s["p_abnormal"] == pytest.approx(0.5)


def test_frame_budget_removes_operators_that_decode_frames(fighting: ReviewVideo) -> None:
    eng = ScriptedEngine({_rid(0, 0): ("F", -1.0, -1.0), _rid(0, 1): ("B", -1.0, -1.0)})
    (t,), _ = _reviewer(eng, max_frames=8).run([fighting])
    # after F, 8 frames are decoded: zooming into [0, 136) (F [0, 68), G [68, 136)) would add
    # 4; D does not apply at start 0; E leads back to [0, 272), whose 4 frames are all seen
    # (0 new), so it is the only operator still offered
    assert eng.requests[0].sampling.allowed_tokens == ("A", "B", "C", "F", "G")
    assert eng.requests[1].sampling.allowed_tokens == ("A", "B", "C", "E")
    assert _text(eng.requests[1]).endswith("Left: 0 frames, 5 turns. Choose one of A, B, C, E.")
    assert t.summary()["frames_decoded"] == 8 and t.forced is False


def test_unconstrained_unreadable_outputs(videos: list[ReviewVideo], fighting: ReviewVideo
                                          ) -> None:
    other = next(v for v in videos if v.video_id == "Assault001_x264")
    oid = other.video_id
    script: dict[str, Entry] = {
        _rid(0, 0): ("hmm", -1.0, -1.0), _rid(0, 1): ("hmm", -1.0, -1.0),
        _rid(0, 2): ("hmm", -0.5, -1.5),
        _rid(0, 0, oid): ("hmm", -1.0, -1.0), _rid(0, 1, oid): ("Answer: B", -2.0, -0.5)}
    eng = ScriptedEngine(script)
    trajs, errors = _reviewer(eng, constrained=False, max_turns=3).run([fighting, other])
    assert errors == {}
    t, u = trajs
    assert [r.request_id for r in eng.requests] == [
        _rid(0, 0), _rid(0, 0, oid), _rid(0, 1), _rid(0, 1, oid), _rid(0, 2)]
    for r in eng.requests:  # a few free tokens, cut at a newline, parsed afterwards
        sp = r.sampling
        assert sp.allowed_tokens == () and sp.max_new_tokens == 8 and sp.stop == ("\n",)
        assert sp.target_tokens == ("A", "B")
    sent = eng.sent()
    # an unreadable turn is spent: same window, no frames, the next observation says so
    assert _text(sent[_rid(0, 1)]) == (
        "That was not one of the letters offered. Frames 34, 102, 170, 238 of 272 (window "
        "0-272, 0.0-9.1 s). Left: 12 frames, 2 turns. Choose one of A, B, F, G.")
    assert len(_last_user(sent[_rid(0, 1)])) == 1
    assert _text(sent[_rid(0, 2)]).startswith(EVENTS["invalid"])
    assert _text(sent[_rid(0, 2)]).endswith("Choose one of A, B.")
    s = t.summary()
    assert s["invalid"] == 3 and s["turns"] == 3 and t.done
    assert s["answer"] is None and s["forced"] is True
    assert s["p_abnormal"] == pytest.approx(0.7310585786300049)  # 1 / (1 + exp(-1))
    assert [st["action"] for st in s["steps"]] == ["invalid"] * 3
    assert [st["code"] for st in s["steps"]] == [None] * 3
    assert [st["output"] for st in s["steps"]] == ["hmm"] * 3
    su = u.summary()
    assert su["invalid"] == 1 and su["turns"] == 2 and su["answer"] == 0
    assert su["forced"] is False  # operators were still offered
    assert su["p_abnormal"] == pytest.approx(0.18242552380635635)  # 1 / (1 + exp(1.5))


def test_follow_up_appends_the_question(fighting: ReviewVideo) -> None:
    eng = ScriptedEngine({_rid(0, 0): ("G", -1.0, -1.0), _rid(0, 1): ("A", -1.0, -1.0)})
    rev = _reviewer(eng)
    (t,), _ = rev.run([fighting])
    msgs = rev.follow_up(t, "Q?")
    assert len(msgs) == 1 + 4 + 1 == 2 + len(t.history)
    assert msgs[0].role == "system" and msgs[0].content == eng.requests[0].messages[0].content
    assert all(a is b for a, b in zip(msgs[1:-1], t.history, strict=True))
    assert [m.role for m in msgs[1:-1]] == ["user", "assistant"] * 2
    assert [m.content for m in msgs[2:-1:2]] == [(TextPart("G"),), (TextPart("A"),)]
    assert msgs[-1] == Message.user(Prompts().task_answer.format(question="Q?"))
    assert msgs[-1].content == (TextPart("Now answer this question about the video.\nQ?"),)


# -- the tiny model --------------------------------------------------------------------------
TINY_ENV = EnvConfig(frames_per_view=2, max_frames=8, max_turns=4)
TINY_PIXELS = 28 * 28 * 16
#: short texts: prompt length is what the tiny model's CPU time goes into
TINY_PROMPTS = Prompts(system="Reply with one letter.", think="Think.")


def _fingerprint(t: Trajectory) -> tuple[Any, ...]:
    turns = tuple((x.kind, x.action.code if x.action else None, tuple(x.token_ids), x.text,
                   x.allowed, x.window.as_list() if x.window else None, x.new_frames)
                  for x in t.turns)
    return (t.video.video_id, t.member, turns, t.answer, t.forced, t.state.turns,
            t.state.frames_decoded)


def _same(batched: list[Trajectory], single: list[Trajectory]) -> None:
    assert [_fingerprint(t) for t in batched] == [_fingerprint(t) for t in single]
    for a, b in zip(batched, single, strict=True):
        ca, cb = a.confidences(), b.confidences()
        assert None not in ca and ca == pytest.approx(cb, abs=1e-5)


@pytest.mark.parametrize("decoding", [Decoding(temperature=0.0, think_tokens=8),
                                      Decoding(temperature=1.5, think_tokens=8, seed=3)],
                         ids=["greedy", "sampled"])
def test_batched_rollouts_equal_single_ones(tiny_qwen_engine: HFEngine,
                                            videos: list[ReviewVideo],
                                            decoding: Decoding) -> None:
    group = 1 if decoding.temperature == 0 else 2
    vids = videos[:3]
    rev = Reviewer(tiny_qwen_engine, TINY_ENV, TINY_PROMPTS, decoding, TINY_PIXELS,
                   thinking=True, batch_size=8)
    batched, errors = rev.run(vids, group)
    assert errors == {} and len(batched) == 3 * group
    single = [t for v in vids for t in rev.run([v], group)[0]]
    _same(batched, single)


class Recorder(Engine):
    """Forwards ``generate`` to the engine asking for the chosen tokens' log-probabilities
    (``logprobs=0``: the decoding itself is unchanged) and keeps every completion."""

    def __init__(self, inner: HFEngine) -> None:
        self.inner, self.name, self.capabilities = inner, inner.name, inner.capabilities
        self.completions: dict[str, Completion] = {}

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = self.inner.generate([with_sampling(r, logprobs=0) for r in requests])
        for req, resp in zip(requests, out, strict=True):
            assert req.request_id not in self.completions
            self.completions[req.request_id] = resp.completions[0]
        return out


def test_trajectory_logprobs_are_the_sampled_logprobs(tiny_qwen_engine: HFEngine,
                                                      videos: list[ReviewVideo]) -> None:
    from methods.anom_pi.idpo import trajectory_logprobs
    from methods.anom_pi.policy import AnomPiPolicy

    engine = tiny_qwen_engine
    policy = AnomPiPolicy(engine, "lora", rank=2, reference=False)
    rec = Recorder(engine)
    rev = Reviewer(rec, TINY_ENV, TINY_PROMPTS, Decoding(temperature=1.0, think_tokens=8, seed=1),
                   TINY_PIXELS, thinking=True, batch_size=8)
    trajs, errors = rev.run(videos[:2], group=2, lora=policy.lora_ref())
    assert errors == {} and len(trajs) == 4
    expected = []
    for t in trajs:
        total = 0.0
        for turn in t.turns:
            comp = rec.completions[turn.request.request_id]
            assert comp.token_ids == turn.token_ids
            assert len(comp.token_logprobs) == len(turn.token_ids) > 0
            total += sum(comp.token_logprobs)
        expected.append(total)
    # coverage (this seed, CPU): action letters drawn among 3+ letters (the renormalisation
    # matters) and free-text reasoning (scored under the full vocabulary)
    assert all(len(t.turns[0].allowed) >= 3 for t in trajs)
    assert any(x.kind == "think" and len(x.token_ids) > 1 for t in trajs for x in t.turns)
    with torch.no_grad():
        got = trajectory_logprobs(policy, engine, trajs, score_batch=4)
    assert got.tolist() == pytest.approx(expected, abs=1e-4)
