"""HyCoVAD proposer: GradNorm, heads, encoders, detector, object inputs, checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.training import CheckpointError
from harness.video import Frames, count_frames, read_frames
from methods.hycovad.detect import MotionBlobDetector, background_indices, make_detector
from methods.hycovad.encoders import make_encoder
from methods.hycovad.gradnorm import GradNorm, gradnorm_step
from methods.hycovad.heads import (
    IrregularityHead,
    JigsawHead,
    MiddleDecoder,
    SocialGRU,
    irregularity_loss,
    jigsaw_loss,
    jigsaw_shuffle,
    mask_middle,
    memory_address,
    memory_entropy,
    middle_loss,
    social_loss,
)
from methods.hycovad.objects import (
    ItemSpec,
    build_tracks,
    collect_items,
    context_indices,
    greedy_match,
    sample_boxes,
    sequence_indices,
    square_boxes,
)
from methods.hycovad.proposer import Proposer, ProposerConfig

TINY = dict(widths=(8, 16, 16), heads=(1, 2, 2), memory_slots=8, head_hidden=16,
            social_hidden=8, background_frames=8)


# -- GradNorm ----------------------------------------------------------------------------------
def test_gradnorm_step_matches_hand_computation() -> None:
    # L/L0 = (2/4, 1/4) = (0.5, 0.25), mean 0.375 -> r = (4/3, 2/3); alpha = 2 -> r^2 =
    # (16/9, 4/9). G = w * g = (2, 1), G_bar = 1.5 -> targets (8/3, 2/3).
    # sign(G - target) = (-1, +1) -> grad = (-2, +1); w - 0.1 * grad = (1.2, 0.9), sum 2.1,
    # renormalised to sum 2: (1.2, 0.9) * 2 / 2.1.
    new = gradnorm_step(np.array([1.0, 1.0]), np.array([2.0, 1.0]), np.array([4.0, 4.0]),
                        np.array([2.0, 1.0]), alpha=2.0, lr=0.1)
    np.testing.assert_allclose(new, [1.2 * 2 / 2.1, 0.9 * 2 / 2.1], rtol=1e-12)
    # alpha = 1: targets (2, 1) equal G exactly: sign 0, weights unchanged
    same = gradnorm_step(np.array([1.0, 1.0]), np.array([2.0, 1.0]), np.array([4.0, 4.0]),
                         np.array([2.0, 1.0]), alpha=1.0, lr=0.1)
    np.testing.assert_allclose(same, [1.0, 1.0])


def test_gradnorm_step_clamps_and_renormalises() -> None:
    # w = (0.01, 1.99), g = (1, 1), equal rates: G = (0.01, 1.99), G_bar = 1 = both targets;
    # grad = (-1, +1); lr 5: (5.01, -3.01) -> clamp (5.01, 1e-3) -> * 2 / 5.011
    new = gradnorm_step(np.array([0.01, 1.99]), np.ones(2), np.ones(2), np.ones(2), 1.5, 5.0)
    np.testing.assert_allclose(new, [5.01 * 2 / 5.011, 0.001 * 2 / 5.011], rtol=1e-12)
    assert math.isclose(new.sum(), 2.0)


def test_gradnorm_grad_norms_and_initial_losses() -> None:
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    losses = {"a": (w ** 2).sum() / 2, "b": 2 * w.sum()}  # grads (3, 4) and (2, 2)
    norms = GradNorm.grad_norms(losses, w, ["a", "b"])
    np.testing.assert_allclose(norms, [5.0, math.sqrt(8.0)], rtol=1e-6)
    gn = GradNorm(["a", "b"], alpha=1.0, lr=0.1)
    gn.update({"a": 2.0, "b": 1.0}, np.array([1.0, 1.0]))
    assert gn.initial is not None and list(gn.initial) == [2.0, 1.0]
    # first update: equal rates (1, 1), G = (1, 1) = targets -> unchanged
    assert gn.weight_dict() == {"a": 1.0, "b": 1.0}


# -- heads -------------------------------------------------------------------------------------
def test_memory_addressing_shrinks_and_sums_to_one() -> None:
    memory = torch.eye(3)
    z = torch.log(torch.tensor([[0.9, 0.09, 0.01], [0.5, 0.3, 0.2]]))
    w = memory_address(z, memory, shrink=0.05)
    np.testing.assert_allclose(w.sum(dim=1), [1.0, 1.0], rtol=1e-6)
    # 0.01 <= 0.05 is zeroed; the rest keep their ratios: (0.9, 0.09) / 0.99
    np.testing.assert_allclose(w[0], [0.9 / 0.99, 0.09 / 0.99, 0.0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w[1], [0.5, 0.3, 0.2], rtol=1e-5)
    np.testing.assert_allclose(memory_entropy(torch.tensor([[0.5, 0.5, 0.0]])), math.log(2),
                               rtol=1e-6)


def test_middle_decoder_and_losses() -> None:
    widths = (8, 16, 16)
    maps = [torch.rand(2, c, 5, 16 // 2 ** j, 16 // 2 ** j) for j, c in enumerate(widths)]
    with torch.no_grad():
        pred, w = MiddleDecoder(widths, 3, slots=6, shrink=0.1)(maps)
    assert pred.shape == (2, 3, 64, 64) and float(pred.min()) >= 0 and float(pred.max()) <= 1
    assert w.shape == (2 * 4 * 4, 6)
    np.testing.assert_allclose(w.sum(dim=1), np.ones(32), rtol=1e-5)
    target = torch.full((1, 3, 4, 4), 0.5)
    assert float(middle_loss(torch.zeros_like(target), target, "l1")[0]) == pytest.approx(0.5)
    assert float(middle_loss(torch.zeros_like(target), target, "l2")[0]) == pytest.approx(0.25)
    seq = torch.ones(1, 3, 5, 4, 4)
    masked = mask_middle(seq)
    assert float(masked[:, :, 2].abs().sum()) == 0 and float(masked.sum()) == 4 * 3 * 16
    assert float(seq.sum()) == 5 * 3 * 16  # input untouched


def test_jigsaw_shuffle_labels_and_loss() -> None:
    frame = torch.arange(16.0).reshape(4, 4)  # patches: 0=[[0,1],[4,5]], 1=[[2,3],[6,7]], ...
    seq = frame.expand(1, 1, 2, 4, 4).clone()
    out = jigsaw_shuffle(seq, torch.tensor([[2, 0, 3, 1]]))
    expected = torch.tensor([[8.0, 9, 0, 1], [12, 13, 4, 5], [10, 11, 2, 3], [14, 15, 6, 7]])
    assert torch.equal(out[0, 0, 0], expected) and torch.equal(out[0, 0, 1], expected)
    labels = torch.tensor([[2, 0, 3, 1]])
    confident = torch.full((1, 4, 4), -20.0)
    confident[0, torch.arange(4), labels[0]] = 20.0
    assert float(jigsaw_loss(confident, labels)[0]) < 1e-6
    assert float(jigsaw_loss(torch.zeros(1, 4, 4), labels)[0]) == pytest.approx(math.log(4))
    head = JigsawHead(16, hidden=8)
    assert head(torch.rand(3, 16, 5, 4, 4)).shape == (3, 4, 4)


def test_irregularity_head_and_loss() -> None:
    head = IrregularityHead(16, frames=5, side=8, hidden=8)
    assert head(torch.rand(3, 16, 5, 8, 8)).shape == (3, 2)
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    loss = irregularity_loss(logits, torch.tensor([0, 1]))
    np.testing.assert_allclose(loss, [math.log(2), 2 + math.log(1 + math.exp(-2))], rtol=1e-6)


def test_social_gru_shapes_masking_and_loss() -> None:
    torch.manual_seed(0)
    gru = SocialGRU(feature_dim=6, hidden=8, embed=4).eval()
    past = torch.rand(2, 7, 2)
    feats = torch.rand(2, 6)
    masked = gru(past, torch.rand(2, 3, 7, 2), torch.zeros(2, 3, dtype=torch.bool), feats)
    alone = gru(past, torch.zeros(2, 0, 7, 2), torch.zeros(2, 0, dtype=torch.bool), feats)
    assert masked.shape == (2, 2)
    torch.testing.assert_close(masked, alone)  # masked neighbours have no influence
    with_n = gru(past, torch.rand(2, 3, 7, 2), torch.ones(2, 3, dtype=torch.bool), feats)
    assert not torch.allclose(with_n, alone)
    assert float(social_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, 6.0]]))[0]) == 25.0


@pytest.mark.parametrize("backbone", ["nnformer", "cnn_cvt"])
def test_encoder_shapes_and_shared_layer(backbone: str) -> None:
    enc = make_encoder(backbone, 3, 5, 64, (8, 16, 32), (1, 1, 1), (1, 2, 2), 4)
    maps = enc(torch.rand(2, 3, 5, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 8, 5, 16, 16), (2, 16, 5, 8, 8),
                                              (2, 32, 5, 4, 4)]
    w = enc.last_shared_layer(1)
    (g,) = torch.autograd.grad(maps[2].square().mean(), w)
    assert float(g.norm()) > 0


# -- detector ----------------------------------------------------------------------------------
def _moving_square(n: int = 10) -> np.ndarray:
    frames = np.full((n, 40, 60, 3), 100, dtype=np.uint8)
    for k in range(n):
        frames[k, 10:14, 2 + 5 * k: 7 + 5 * k] = 250  # 5 wide, 4 high, 5 px per frame
    return frames


def test_motion_detector_finds_a_moving_square_exactly() -> None:
    frames = _moving_square()
    det = MotionBlobDetector(dilation=0, min_area=1)
    bg = det.fit_background(frames)
    assert bg.shape == (2, 40, 60, 3) and int(bg[0].max()) == 100
    for k, boxes in enumerate(det.detect(frames, bg)):
        np.testing.assert_array_equal(boxes, [[2 + 5 * k, 10, 7 + 5 * k, 14]])
    dilated = MotionBlobDetector(dilation=1, min_area=1).detect(frames[3:4], bg)[0]
    np.testing.assert_array_equal(dilated, [[16, 9, 23, 15]])  # one pixel more on each side
    assert len(MotionBlobDetector(dilation=0, min_area=21).detect(frames[:1], bg)[0]) == 0
    np.testing.assert_array_equal(background_indices(10, 4), [0, 3, 6, 9])


def test_make_detector_specs(tmp_path: Path) -> None:
    assert isinstance(make_detector("motion"), MotionBlobDetector)
    with pytest.raises(FileNotFoundError, match="weights"):
        make_detector(f"ultralytics:{tmp_path / 'missing.pt'}")
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")


@pytest.fixture(scope="module")
def complexvad_root() -> Path:
    from harness.sample_world import ensure_sample

    return Path(ensure_sample("complexvad"))


@pytest.mark.parametrize("name,frame,role", [("test_015", 100, "faller"),
                                             ("test_012", 150, "bag"),
                                             ("test_007", 40, "board"),
                                             ("test_001", 130, "car")])
def test_motion_detector_on_sample_world(complexvad_root: Path, name: str, frame: int,
                                         role: str) -> None:
    """The scripted actor (a fallen person, an abandoned bag, a skateboard, a car on the
    sidewalk) and most walking people are inside a detected box; positions come from the
    generator (bottom centre), not from the detector."""
    from harness.sample_world.catalog import plan
    from harness.sample_world.observe import staged

    spec = next(s for s in plan("complexvad", 0) if s.name == name)
    st = staged(spec, 0)
    path = complexvad_root / spec.relpath
    n = count_frames(path)
    det = MotionBlobDetector()
    idx = background_indices(n, 32)
    frames = read_frames(path, np.union1d(idx, [frame]))
    boxes = det.detect(frames.take([frame]), det.fit_background(frames.take(idx)))[0]

    def found(x: float, y: float) -> bool:
        return bool(np.any((boxes[:, 0] <= x) & (x < boxes[:, 2]) & (boxes[:, 1] <= y - 1)
                           & (y - 1 < boxes[:, 3])))

    actor = next(a for _, _, _, roles in st.events for r, acts in roles.items() if r == role
                 for a in acts)
    assert found(float(actor.x[frame]), float(actor.y[frame]))
    walkers = [a for a in st.actors if a.kind == "person" and a.visible[frame]
               and 3 < a.x[frame] < 157]
    hits = sum(found(float(a.x[frame]), float(a.y[frame])) for a in walkers)
    assert hits >= 0.8 * len(walkers)


# -- object inputs -----------------------------------------------------------------------------
def test_sequence_and_context_indices() -> None:
    np.testing.assert_array_equal(sequence_indices(np.array([0, 10]), 12, 2, 3),
                                  [[0, 0, 0, 3, 6], [4, 7, 10, 11, 11]])
    # histories (3 steps, stride 2): 0 -> (-4, -2, 0) -> {0}; 10 -> (6, 8, 10)
    np.testing.assert_array_equal(context_indices(np.array([0, 10]), 12, 2, 3, 3, 2),
                                  [0, 3, 4, 6, 7, 8, 10, 11])


def test_square_boxes_rules() -> None:
    boxes = np.array([[10, 20, 14, 28], [0, 0, 4, 8], [0, 0, 200, 10], [150, 100, 158, 118]])
    out = square_boxes(boxes, 160, 120, min_side=16, margin=4)
    np.testing.assert_allclose(out, [[4, 16, 20, 32],     # side max(16, 8 + 8), centred
                                     [0, 0, 16, 16],      # shifted inside the frame
                                     [40, 0, 160, 120],   # side capped at 120; x0 = 100 - 60
                                     [134, 94, 160, 120]])  # side 18 + 8 = 26, shifted inside


def test_sample_boxes_bilinear_by_hand() -> None:
    frame = np.array([[[0], [40]], [[80], [120]]], dtype=np.uint8)[None]  # (1, 2, 2, 1)
    out = sample_boxes(frame, np.array([0]), np.array([[0, 0, 2, 2]]), 4)[0, :, :, 0] * 255
    # source positions per output pixel: (0, 0.25, 0.75, 1) on both axes
    row0 = [0, 10, 30, 40]
    np.testing.assert_allclose(out[0], row0, atol=1e-4)
    np.testing.assert_allclose(out[1], [v + 20 for v in row0], atol=1e-4)  # 0.25 * 80
    np.testing.assert_allclose(out[3], [v + 80 for v in row0], atol=1e-4)
    same = sample_boxes(frame, np.array([0]), np.array([[0, 0, 2, 2]]), 2)[0, :, :, 0] * 255
    np.testing.assert_allclose(same, [[0, 40], [80, 120]], atol=1e-4)


def test_greedy_tracking_by_hand() -> None:
    np.testing.assert_array_equal(
        greedy_match(np.array([[0.0, 0], [1, 0]]), np.array([[0.9, 0], [0.05, 0]]), 0.2),
        [1, 0])
    a = [np.array([[0.10, 0.5], [0.80, 0.2]]), np.array([[0.12, 0.5], [0.80, 0.2]]),
         np.array([[0.80, 0.2], [0.14, 0.5], [0.40, 0.9]])]
    pos, valid = build_tracks([None, *a], max_dist=0.05)  # oldest frame before the video
    assert valid.tolist() == [False, False, False]
    pos, valid = build_tracks(a, max_dist=0.05)
    assert valid.tolist() == [True, True, False]  # the third object appeared in the last frame
    np.testing.assert_allclose(pos[0], [[0.80, 0.2]] * 3)
    np.testing.assert_allclose(pos[1], [[0.10, 0.5], [0.12, 0.5], [0.14, 0.5]])


def test_collect_items_levels() -> None:
    dets = {j: np.array([[10.0 + j, 20, 14 + j, 28]]) for j in range(10)}
    spec = ItemSpec(objects=True, frames=True, track_steps=3, track_stride=2, neighbours=2)
    items = collect_items(np.array([1, 9]), dets, 160, 120, spec)
    assert items.is_frame.tolist() == [False, True, False, True]
    assert items.valid.tolist() == [False, False, True, False]  # target 1 lacks history
    np.testing.assert_allclose(items.box[1], [0, 0, 160, 120])
    np.testing.assert_allclose(items.current[2], [21 / 160, 24 / 120])
    np.testing.assert_allclose(items.past[2], [[17 / 160, 24 / 120], [19 / 160, 24 / 120]])


# -- the proposer ------------------------------------------------------------------------------
def _video(n: int = 40) -> Frames:
    frames = np.full((n, 48, 64, 3), 90, dtype=np.uint8)
    for k in range(n):
        frames[k, 8:16, (k % 50): (k % 50) + 4] = (200, 40, 40)
        lo, hi = max(56 - 2 * k, 0), max(62 - 2 * k, 0)
        frames[k, 30:34, lo:hi] = (30, 30, 220)  # 6 wide, 2 px per frame, leaves at k = 31
    return Frames(np.arange(n), frames, n)


def test_proposer_context_indices_include_background() -> None:
    prop = Proposer.untrained(ProposerConfig(**TINY), seed=0)  # type: ignore[arg-type]
    idx = prop.context_indices(np.array([20]), 40)
    expect = set(range(14, 27, 3)) | set(range(20 - 21, 21, 3)) | \
        set(background_indices(40, 8).tolist())
    assert idx.tolist() == sorted(i for i in expect if i >= 0)


@pytest.mark.parametrize("level", ["object", "both"])
def test_proposer_scores_and_round_trip(tmp_path: Path, level: str) -> None:
    prop = Proposer.untrained(ProposerConfig(level=level, **TINY), seed=0)  # type: ignore[arg-type]
    prop.weights = {"irregularity": 0.5, "middle": 2.0, "jigsaw": 1.0, "social": 0.5}
    video = _video()
    targets = np.array([0, 21, 27])
    res = prop.score(video, targets, 40)
    assert res.targets.tolist() == [0, 21, 27] and res.objects.tolist() == [2, 2, 2]
    assert set(res.per_task) == {"irregularity", "middle", "jigsaw", "social"}
    assert res.per_task["social"][0] == 0  # no history before frame 0
    manual = sum(prop.weights[t] * res.per_task[t] for t in res.per_task)
    np.testing.assert_allclose(res.total, manual, rtol=1e-9)
    prop.calibration = {"total_quantiles": {"0.5": 1.0}}
    prop.save(tmp_path / "ckpt", extra={"note": "x"})
    meta = json.loads((tmp_path / "ckpt" / "hycovad.json").read_text())
    assert meta["format"] == "vad-eval/hycovad-proposer-v1" and meta["extra"] == {"note": "x"}
    back = Proposer.load(tmp_path / "ckpt")
    again = back.score(video, targets, 40)
    np.testing.assert_array_equal(again.total, res.total)
    assert back.weights == prop.weights and back.calibration == prop.calibration
    assert back.config == prop.config


def test_proposer_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        Proposer.load(tmp_path / "nothing")
    (tmp_path / "hycovad.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "proposer.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="format"):
        Proposer.load(tmp_path)
    (tmp_path / "hycovad.json").write_text(json.dumps(
        {"format": "vad-eval/hycovad-proposer-v1", "config": {}, "weights": {}}))
    with pytest.raises(CheckpointError, match="malformed"):
        Proposer.load(tmp_path)


def test_training_losses_on_a_tiny_batch() -> None:
    from methods.hycovad.proposer import to_batch
    from methods.hycovad.train import irregular_offsets, random_perms

    prop = Proposer.untrained(ProposerConfig(**TINY), seed=0)  # type: ignore[arg-type]
    video = _video()
    items = prop.items(video, np.array([25, 30]), 40)
    rng = np.random.default_rng(0)
    from methods.hycovad.objects import item_sequences, sequence_offsets

    seq = item_sequences(video.frames, video.indices, items, sequence_offsets(2, 3), 40, 64)
    irr = item_sequences(video.frames, video.indices, items,
                         irregular_offsets(rng, len(items), 2, 3), 40, 64)
    batch = to_batch(seq, items, "cpu", irr, random_perms(rng, len(items)))
    prop.net.train()
    per = prop.net.item_losses(batch, training=True)
    assert per["irregularity"].shape == (2 * len(items),)
    losses = prop.net.training_losses(batch)
    assert set(losses) == {"irregularity", "middle", "jigsaw", "social"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    # jigsaw: one cross-entropy per cell, mean over cells, ~log 4 for an untrained head
    assert float(losses["jigsaw"].detach()) == pytest.approx(math.log(4), rel=0.2)


def test_ultralytics_adapter_with_a_stand_in_package(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter's contract with ``ultralytics`` (not installed here): the weights file is
    loaded with ``YOLO(path)``, frames go in as BGR with the confidence and class filter, and
    each result's ``boxes.xyxy`` comes back as ``(M, 4)`` float boxes per frame."""
    import sys
    import types

    seen: dict[str, object] = {}

    class Boxes:
        def __init__(self, xyxy: np.ndarray) -> None:
            self.xyxy = torch.as_tensor(xyxy)

    class YOLO:
        def __init__(self, weights: str) -> None:
            seen["weights"] = weights

        def predict(self, images: list[np.ndarray], conf: float, classes: object,
                    verbose: bool) -> list[object]:
            seen.update(conf=conf, classes=classes, first_pixel=images[0][0, 0].tolist())
            return [types.SimpleNamespace(boxes=Boxes(np.array([[1.0, 2.0, 5.0, 9.0]]) * (i + 1)))
                    for i in range(len(images))]

    monkeypatch.setitem(sys.modules, "ultralytics", types.SimpleNamespace(YOLO=YOLO))
    weights = tmp_path / "yolo12n.pt"
    weights.write_bytes(b"stand-in")
    det = make_detector(f"ultralytics:{weights}")
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[:, :, :, 0] = 200  # red in RGB
    boxes = det.detect(frames, None)
    assert seen["weights"] == str(weights) and seen["conf"] == 0.25 and seen["classes"] is None
    assert seen["first_pixel"] == [0, 0, 200]  # BGR
    assert [b.tolist() for b in boxes] == [[[1.0, 2.0, 5.0, 9.0]], [[2.0, 4.0, 10.0, 18.0]]]
    with pytest.raises(FileNotFoundError, match="weights"):
        make_detector(f"ultralytics:{tmp_path / 'missing.pt'}")
