"""The sample world: native layouts, frame counts, learnability, determinism, concurrency.

The annotation files are parsed here independently of the generator's internals, the way a
dataset loader would read the real datasets. Frames are 0-based; interval ends are inclusive.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter
from sklearn.metrics import roc_auc_score

from harness.sample_world import VAD_DATASETS, ensure_sample

REPO_ROOT = Path(__file__).resolve().parents[1]
UCF_CLASSES = {
    "Abuse",
    "Arrest",
    "Arson",
    "Assault",
    "Burglary",
    "Explosion",
    "Fighting",
    "RoadAccidents",
    "Robbery",
    "Shooting",
    "Shoplifting",
    "Stealing",
    "Vandalism",
}
XD_CODES = {"B1", "B2", "B4", "B5", "B6", "G"}

# A test video as parsed from the native files: (path, intervals, num_frames or None).
TestVideo = tuple[Path, list[tuple[int, int]], int | None]


# ----------------------------------------------------------------------------- parsing


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path.name} lacks a trailing newline"
    return [line for line in text.splitlines() if line.strip()]


def _pairs(numbers: list[int]) -> list[tuple[int, int]]:
    assert len(numbers) % 2 == 0
    return [(s, e) for s, e in zip(numbers[::2], numbers[1::2], strict=True) if s != -1]


def parse_ucf(root: Path) -> tuple[list[TestVideo], list[Path]]:
    ann: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for line in _read_lines(root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"):
        assert "  " in line and "\t" not in line
        name, cls, *nums = line.split()
        assert len(nums) == 4
        ann[name] = (cls, _pairs([int(n) for n in nums]))
    test: list[TestVideo] = []
    for rel in _read_lines(root / "Anomaly_Test.txt"):
        folder, fname = rel.split("/")
        cls, intervals = ann.pop(fname)
        if folder == "Testing_Normal_Videos_Anomaly":
            assert cls == "Normal" and not intervals and fname.startswith("Normal_Videos_")
        else:
            assert cls == folder and cls in UCF_CLASSES and intervals
            assert fname.startswith(cls) and fname.endswith("_x264.mp4")
        test.append((root / rel, intervals, None))
    assert not ann, f"annotated but not listed: {sorted(ann)}"
    train = []
    for rel in _read_lines(root / "Anomaly_Train.txt"):
        folder = rel.split("/")[0]
        assert folder == "Training_Normal_Videos_Anomaly" or folder in UCF_CLASSES
        train.append(root / rel)
    return test, train


def parse_xd(root: Path) -> tuple[list[TestVideo], list[Path]]:
    ann: dict[str, list[tuple[int, int]]] = {}
    for line in _read_lines(root / "annotations.txt"):
        name, *nums = line.split(" ")
        ann[name] = _pairs([int(n) for n in nums])
    test: list[TestVideo] = []
    for path in sorted((root / "videos").glob("*.mp4")):
        label = path.stem.rsplit("_label_", 1)[1]
        intervals = ann.pop(path.stem, [])
        if label == "A":
            assert not intervals
        else:
            assert label.split("-")[0] in XD_CODES and intervals
        test.append((path, intervals, None))
    assert not ann, f"annotated videos missing from videos/: {sorted(ann)}"
    train = [root / rel for rel in _read_lines(root / "train_list.txt")]
    assert all(p.parent.name == "train" and "_label_" in p.stem for p in train)
    return test, train


def parse_complexvad(root: Path) -> tuple[list[TestVideo], list[Path]]:
    out: dict[str, list] = {}
    for split in ("test", "train"):
        doc = json.loads((root / f"complexvad_{split}.json").read_text(encoding="utf-8"))
        assert doc["format"] == "vad-eval/complexvad-v1" and doc["end_inclusive"] is True
        assert doc["fps"] == 30
        out[split] = []
        for v in doc["videos"]:
            assert v["label"] in ("normal", "anomalous") and v["fps"] == 30
            intervals = [(a["start"], a["end"]) for a in v["anomalies"]]
            assert all(isinstance(a["type"], str) and a["type"] for a in v["anomalies"])
            if split == "train" or v["label"] == "normal":
                assert not intervals
            else:
                assert intervals
            out[split].append((root / v["path"], intervals, v["num_frames"]))
    return out["test"], [p for p, _, _ in out["train"]]


PARSERS = {"ucf_crime": parse_ucf, "xd_violence": parse_xd, "complexvad": parse_complexvad}


def declared_frames(root: Path) -> dict[Path, int]:
    """Frame counts from ``meta.json`` (and, for ComplexVAD, the annotation JSONs)."""
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    counts = {root / v["path"]: v["num_frames"] for v in meta["videos"]}
    test, _ = PARSERS[meta["dataset"]](root)
    for path, _, n in test:
        if n is not None:
            assert counts[path] == n
    return counts


# ----------------------------------------------------------------------------- video helpers


def gray_frames(path: Path) -> np.ndarray:
    """(T, H, W) uint8 grayscale frames decoded with PyAV."""
    reformatter = VideoReformatter()  # reused: per-frame to_ndarray(format=) is very slow
    with av.open(str(path)) as container:
        return np.stack(
            [reformatter.reformat(f, format="gray").to_ndarray() for f in container.decode(video=0)]
        )


def frame_diff_scores(path: Path) -> np.ndarray:
    """Mean |frame - previous frame| per frame; the first frame gets the second's value."""
    g = gray_frames(path).astype(np.float32)
    d = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    return np.concatenate([d[:1], d])


def count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def frames_digest(path: Path) -> str:
    return hashlib.sha256(gray_frames(path).tobytes()).hexdigest()


ANNOTATION_FILES = {
    "ucf_crime": (
        "Anomaly_Test.txt",
        "Anomaly_Train.txt",
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
        "meta.json",
    ),
    "xd_violence": ("annotations.txt", "train_list.txt", "meta.json"),
    "complexvad": ("complexvad_test.json", "complexvad_train.json", "meta.json"),
}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def roots() -> dict[str, Path]:
    """The three VAD datasets, seed 0, in the (test-isolated) cache."""
    return {d: ensure_sample(d) for d in VAD_DATASETS}


@pytest.fixture(scope="module")
def test_scores(
    roots: dict[str, Path],
) -> dict[str, list[tuple[Path, list[tuple[int, int]], np.ndarray]]]:
    """Per dataset: each test video's path, intervals and frame-difference scores."""
    out = {}
    for dataset, root in roots.items():
        test, _ = PARSERS[dataset](root)
        out[dataset] = [(path, intervals, frame_diff_scores(path)) for path, intervals, _ in test]
    return out


@pytest.fixture(scope="module")
def raced_xd_seed1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two processes generate XD-Violence seed 1 into the same fresh root at once (one through
    the CLI, one through ensure_sample). Returns the root and both processes' outputs."""
    root = tmp_path_factory.mktemp("race") / "xd"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    code = (
        "import sys; from pathlib import Path; from harness.sample_world import ensure_sample; "
        "print(ensure_sample('xd_violence', seed=1, root=Path(sys.argv[1])))"
    )
    cmds = [
        [sys.executable, "-c", code, str(root)],
        [
            sys.executable,
            "-m",
            "harness.sample_world",
            "--dataset",
            "xd_violence",
            "--out",
            str(root),
            "--seed",
            "1",
        ],
    ]
    procs = [
        subprocess.Popen(
            c, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in cmds
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out)
    return root, outs


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("dataset", VAD_DATASETS)
def test_layout(roots: dict[str, Path], dataset: str) -> None:
    root = roots[dataset]
    test, train = PARSERS[dataset](root)
    counts = declared_frames(root)
    assert len(test) == 16 and len(train) == 12
    assert len({p.name for p, _, _ in test} | {p.name for p in train}) == 28, "names not unique"
    assert sum(1 for _, iv, _ in test if iv) == 8
    assert set(counts) == {p for p, _, _ in test} | set(train)
    for path in [p for p, _, _ in test] + train:
        assert path.is_file() and path.suffix == ".mp4", path
    for path, intervals, _ in test:
        n = counts[path]
        assert 6 * 24 <= n <= 12 * 30
        assert len(intervals) <= 2
        for s, e in intervals:
            assert 0 <= s <= e < n, (path.name, s, e, n)
        covered = sum(e - s + 1 for s, e in intervals)
        assert covered < n / 2, f"{path.name}: anomalies cover {covered}/{n} frames"
    assert not list(root.parent.glob(f".tmp-{root.name}-*")), "temporary folder left behind"


@pytest.mark.parametrize("dataset", VAD_DATASETS)
def test_decoded_frame_counts(
    roots: dict[str, Path], test_scores: dict[str, list], dataset: str
) -> None:
    decoded = {path: len(scores) for path, _, scores in test_scores[dataset]}  # one per frame
    for path, n in declared_frames(roots[dataset]).items():
        got = decoded[path] if path in decoded else count_frames(path)
        assert got == n, path.name


@pytest.mark.parametrize("dataset", VAD_DATASETS)
def test_frame_difference_detects_anomalies(test_scores: dict[str, list], dataset: str) -> None:
    scores, labels = [], []
    for _, intervals, s in test_scores[dataset]:
        y = np.zeros(len(s), dtype=np.int8)
        for a, b in intervals:
            y[a : b + 1] = 1  # ends inclusive
        scores.append(s)
        labels.append(y)
    auc = roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    assert auc >= 0.6, f"{dataset}: frame-difference AUC {auc:.3f}"


def test_same_seed_is_deterministic(roots: dict[str, Path], tmp_path: Path) -> None:
    again = ensure_sample("xd_violence", seed=0, root=tmp_path / "xd_violence")
    first = roots["xd_violence"]
    for name in ANNOTATION_FILES["xd_violence"]:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    test, _ = parse_xd(first)
    picks = [p for p, iv, _ in test if iv][:2] + [p for p, iv, _ in test if not iv][:1]
    for path in picks:
        assert frames_digest(path) == frames_digest(again / path.relative_to(first))


def test_concurrent_generation(raced_xd_seed1: tuple[Path, list[str]]) -> None:
    root, outs = raced_xd_seed1
    for out in outs:
        assert str(root) in out
    test, train = parse_xd(root)
    counts = declared_frames(root)
    assert len(counts) == len(test) + len(train) == 28
    assert all(p.is_file() for p in counts)
    assert not list(root.parent.glob(f".tmp-{root.name}-*"))
    assert ensure_sample("xd_violence", seed=1, root=root) == root  # complete: reused


def test_other_seed_differs(roots: dict[str, Path], raced_xd_seed1: tuple[Path, list[str]]) -> None:
    seed0, seed1 = roots["xd_violence"], raced_xd_seed1[0]
    assert (seed0 / "annotations.txt").read_bytes() != (seed1 / "annotations.txt").read_bytes()
    a = sorted((seed0 / "videos").glob("*.mp4"))[0]
    b = sorted((seed1 / "videos").glob("*.mp4"))[0]
    assert frames_digest(a) != frames_digest(b)


def test_default_location_and_reuse(roots: dict[str, Path]) -> None:
    from harness.paths import cache_dir

    root = roots["ucf_crime"]
    assert root == cache_dir() / "sample_world" / "v1-seed0" / "ucf_crime"
    mtime = (root / "meta.json").stat().st_mtime_ns
    assert ensure_sample("ucf_crime") == root
    assert (root / "meta.json").stat().st_mtime_ns == mtime


def _fake_meta(root: Path, dataset: str, seed: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    meta = {"format": "vad-eval/sample-world-meta-v1", "dataset": dataset, "seed": seed}
    (root / "meta.json").write_text(json.dumps(meta))


def test_lost_race_discards_own_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process renames its copy into place while we generate: ours is thrown away."""
    import harness.sample_world.generate as gen

    target = tmp_path / "ucf"

    def other_process_wins(dataset: str, seed: int, out: Path) -> list:
        _fake_meta(out, dataset, seed)
        (out / "mine").touch()
        _fake_meta(target, dataset, seed)
        (target / "theirs").touch()
        return []

    monkeypatch.setattr(gen, "generate_dataset", other_process_wins)
    assert ensure_sample("ucf_crime", seed=3, root=target) == target
    assert (target / "theirs").exists() and not (target / "mine").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ucf"]


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.sample_world.generate as gen

    def crash(dataset: str, seed: int, out: Path) -> list:
        (out / "half-written.mp4").write_bytes(b"\0" * 10)
        raise RuntimeError("encoder died")

    monkeypatch.setattr(gen, "generate_dataset", crash)
    with pytest.raises(RuntimeError, match="encoder died"):
        ensure_sample("complexvad", root=tmp_path / "cv")
    assert list(tmp_path.iterdir()) == []


def test_refuses_foreign_folders(roots: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sample dataset"):
        ensure_sample("shanghaitech", root=tmp_path / "x")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "file.txt").write_text("not a dataset")
    with pytest.raises(FileExistsError):
        ensure_sample("xd_violence", root=junk)
    with pytest.raises(FileExistsError):  # holds ucf_crime, asked for complexvad
        ensure_sample("complexvad", root=roots["ucf_crime"])
