"""The language side of the sample world: VRU-Accident, HIVAU-70K, Vad-Reasoning and VANE-Bench.

The generated files are read with plain ``json`` / ``ast`` and compared with the real reference
files (``reference_dir``); the scripted truth (kinds, styles, frame intervals) comes from the
plan. Frames are 0-based with inclusive ends; HIVAU seconds map to frames by ``int(t * fps)``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import av
import pytest
from PIL import Image

from harness.sample_world import LANGUAGE_DATASETS, ensure_sample
from harness.sample_world.__main__ import main as cli_main
from harness.sample_world.catalog import VideoSpec, plan
from harness.sample_world.phrases import KINDS

SUBSETS = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
OPTIONS_RE = re.compile(r"^A\. (.+), B\. (.+), C\. (.+), D\. (.+)$")
#: Words that only the correct accident-type option of each kind contains.
ACCIDENT_WORDS = {
    "crosswalk_hit": "zebra crossing",
    "jaywalk_hit": "away from any crossing",
    "cyclist_hit": "hits a cyclist",
    "vehicle_on_sidewalk": "sidewalk",
}


def _annotation_files(root: Path) -> dict[str, bytes]:
    """Every file that is not a video or a frame, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in (".mp4", ".jpg")
    }


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("language")
    return {d: ensure_sample(d, root=base / d) for d in LANGUAGE_DATASETS}


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, VideoSpec]]:
    return {d: {s.relpath: s for s in plan(d, 0)} for d in LANGUAGE_DATASETS}


# ----------------------------------------------------------------------------- all datasets


@pytest.mark.parametrize("dataset", LANGUAGE_DATASETS)
def test_meta_and_frame_counts(roots: dict[str, Path], dataset: str) -> None:
    root = roots[dataset]
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    assert meta["dataset"] == dataset and meta["seed"] == 0
    # Vad-Reasoning also has its 24-video RL training split
    evaluated = [v for v in meta["videos"] if v["split"] != "rl"]
    assert 8 <= len(evaluated) <= 16
    assert len(meta["videos"]) - len(evaluated) == (24 if dataset == "vad_reasoning" else 0)
    for v in meta["videos"]:
        path = root / v["path"]
        if dataset == "vane":
            frames = sorted(path.glob("frame_*.jpg"))
            assert [f.name for f in frames] == [f"frame_{i:04d}.jpg" for i in range(len(frames))]
            assert len(frames) == v["num_frames"] and 10 <= len(frames) <= 24
            assert v["fps"] == 3
            with Image.open(frames[0]) as im:
                assert im.size == (160, 120) and im.format == "JPEG"
        else:
            assert _count_frames(path) == v["num_frames"], v["path"]
            assert 6 * v["fps"] <= v["num_frames"] <= 11 * v["fps"]
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 125_000 * len(meta["videos"])  # small: about 2 MB for 16 videos


def test_same_seed_same_bytes(roots: dict[str, Path], tmp_path: Path) -> None:
    for dataset, first in roots.items():
        again = ensure_sample(dataset, root=tmp_path / dataset)
        files = _annotation_files(first)
        assert files == _annotation_files(again), dataset
        assert len(files) >= 2
    first, again = roots["vane"], tmp_path / "vane"
    frames = sorted((first / "AI-Generated").rglob("*.jpg"))[:30]
    assert all(p.read_bytes() == (again / p.relative_to(first)).read_bytes() for p in frames)


def test_other_seed_other_texts(roots: dict[str, Path], tmp_path: Path) -> None:
    import importlib

    from harness.sample_world.catalog import LANGUAGE_MODULES

    for dataset in LANGUAGE_DATASETS:  # texts only: staging needs no rendering
        out = tmp_path / dataset
        out.mkdir()
        importlib.import_module(LANGUAGE_MODULES[dataset]).write_layout(out, 1, plan(dataset, 1))
        theirs = _annotation_files(out)
        ours = {k: v for k, v in _annotation_files(roots[dataset]).items() if k in theirs}
        assert set(ours) == set(theirs) and ours != theirs, dataset


def test_cli_knows_the_language_datasets(roots: dict[str, Path], capsys) -> None:
    assert cli_main(["--dataset", "vane", "--out", str(roots["vane"])]) == 0  # complete: reused
    assert str(roots["vane"]) in capsys.readouterr().out


# ----------------------------------------------------------------------------- VRU-Accident


def test_vru_matches_reference_format(roots: dict[str, Path], reference_dir: Path) -> None:
    root, ref_root = roots["vru_accident"], reference_dir / "vru_accident" / "MetaData"
    for subset in SUBSETS:
        names = (f"{subset}_VQA_annotation.json", f"{subset}_Dense_Caption.json")
        ours = [json.loads((root / "MetaData" / subset / n).read_text("utf-8")) for n in names]
        refs = [json.loads((ref_root / subset / n).read_text("utf-8")) for n in names]
        raw = (root / "MetaData" / subset / names[0]).read_bytes()
        assert raw.endswith(b"}\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
        ref_entry = next(iter(refs[0].values()))
        assert 2 <= len(ours[0]) <= 3
        for n, (key, entry) in enumerate(ours[0].items(), start=1):
            assert key == f"./VRU_videos/{subset}/VRU_{n}.mp4"
            assert (root / key).is_file()
            assert list(entry) == list(ref_entry)  # the six categories, in order
            for cat, qa in entry.items():
                assert list(qa) == list(ref_entry[cat])
                suffix = ref_entry[cat]["question"].split("? ", 1)[1]
                assert qa["question"].endswith("? " + suffix)
                m = OPTIONS_RE.match(qa["options"])
                assert m and len(set(m.groups())) == 4, qa["options"]
                assert qa["GT"] in "ABCD"
        assert list(ours[1]) == [k.removesuffix(".mp4") for k in ours[0]]
        ref_caption = next(iter(refs[1].values()))
        assert all(
            list(c) == list(ref_caption) and len(c["gt"].split()) >= 60 for c in ours[1].values()
        )


def test_vru_gt_is_the_scripted_truth(roots: dict[str, Path], specs: dict) -> None:
    root = roots["vru_accident"]
    letters = {"A": 0, "B": 1, "C": 2, "D": 3}
    gts = []
    for subset in SUBSETS:
        doc = json.loads((root / "MetaData" / subset / f"{subset}_VQA_annotation.json").read_text())
        caps = json.loads((root / "MetaData" / subset / f"{subset}_Dense_Caption.json").read_text())
        for key, entry in doc.items():
            spec = specs["vru_accident"][key[2:]]
            opts = {c: OPTIONS_RE.match(qa["options"]).groups() for c, qa in entry.items()}
            right = {c: opts[c][letters[qa["GT"]]] for c, qa in entry.items()}
            gts += [qa["GT"] for qa in entry.values()]
            word = ACCIDENT_WORDS[spec.kind]
            assert word in right["accident type"]
            assert sum(word in o for o in opts["accident type"]) == 1
            dusk = spec.style == "dusk"
            assert dusk == any(w in right["weather and light"] for w in ("dusk", "evening"))
            assert (spec.style == "campus") == ("campus" in right["location"])
            assert (spec.style == "campus") == ("campus" in right["road type"])
            text = caps[key.removesuffix(".mp4")]["gt"]
            noun = "cyclist" if spec.kind == "cyclist_hit" else "pedestrian"
            assert noun in text and ("dusk" in text or "twilight" in text) == dusk
            if spec.kind != "vehicle_on_sidewalk":  # the impact time, 0.3 s after the start
                hit = (spec.events[0].start + 9) / spec.fps
                assert f"At about {hit:.1f} s the car strikes" in text
    assert len(set(gts)) == 4  # the correct letter's position varies


# ----------------------------------------------------------------------------- HIVAU-70K


def _hivau_pattern(entry: dict, name: str) -> list[tuple[str, str, str]]:
    """The rows a video gets, as (type, task, video): the rule read off the real file."""
    tasks = ("judgement", "description", "analysis")
    rows = [
        ("video", t, f"ucf-crime/videos/test/{name}.mp4")
        for t in tasks
        if t in entry["video_summary_split"]
    ]
    clip_rows = [
        ("clip", "caption", f"ucf-crime/clips/test/{name}_E{e}C{c}.mp4")
        for e, caps in enumerate(entry["clips_caption"])
        for c in range(len(caps))
    ]
    for i, split in enumerate(entry["events_summary_split"]):
        rows += [
            ("event", t, f"ucf-crime/events/test/{name}_E{i}.mp4") for t in tasks if t in split
        ]
        rows += clip_rows
    return rows


def _by_video(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        name = re.sub(r"(_E\d+(C\d+)?)?\.mp4$", "", r["video"].rsplit("/", 1)[1])
        out.setdefault(name, []).append(r)
    return out


def test_hivau_matches_reference_format(roots: dict[str, Path], reference_dir: Path) -> None:
    root, ref = roots["hivau"], reference_dir / "hivau70k"
    db = json.loads((root / "raw_annotations/ucf_database_test.json").read_text("utf-8"))
    ref_db = json.loads((ref / "ucf_database_test.json").read_text("utf-8"))
    ref_rows = [json.loads(x) for x in (ref / "merge_instruction_test_final.jsonl").open()]
    rows = [json.loads(x) for x in (root / "instruction/merge_instruction_test_final.jsonl").open()]
    ref_entry = next(iter(ref_db.values()))
    assert list(db) == sorted(db) and 8 <= len(db) <= 16
    for name, entry in db.items():
        assert list(entry) == list(ref_entry), name
        assert entry["fps"] == 30.0 and (root / f"ucf-crime/videos/test/{name}.mp4").is_file()
        normal = name.startswith("Normal_Videos_")
        assert (entry["label"] == []) == normal  # the original's convention for normal videos
        n = len(entry["events"])
        assert n >= 1 and all(len(entry[k]) == n for k in ("clips", "clips_caption"))
        assert len(entry["events_summary"]) == len(entry["events_summary_split"]) == n
        want = {"judgement", "description"} | (set() if normal else {"analysis"})
        assert all(set(s) == want for s in entry["events_summary_split"])
        assert set(entry["video_summary_split"]) == want
    assert {tuple(r) for r in rows} == {tuple(ref_rows[0])}  # same keys in the same order
    assert [r["id"] for r in rows] == list(range(len(rows)))
    assert {(r["type"], r["task"]) for r in rows} <= {(r["type"], r["task"]) for r in ref_rows}
    ours = _by_video(rows)
    assert list(ours) == list(db)
    for name, group in ours.items():
        assert [(r["type"], r["task"], r["video"]) for r in group] == _hivau_pattern(db[name], name)
        assert all(r["prompt"].endswith("?") or r["prompt"].endswith(".") for r in group)
    # the same rule holds for the real file's UCF videos (clip rows repeated after each event)
    for name, group in _by_video([r for r in ref_rows if r["video"].startswith("ucf")]).items():
        assert [(r["type"], r["task"], r["video"]) for r in group] == _hivau_pattern(
            ref_db[name], name
        )


def test_hivau_times_map_to_scripted_frames(roots: dict[str, Path], specs: dict) -> None:
    root = roots["hivau"]
    db = json.loads((root / "raw_annotations/ucf_database_test.json").read_text("utf-8"))
    rows = [json.loads(x) for x in (root / "instruction/merge_instruction_test_final.jsonl").open()]
    answers = {(r["type"], r["task"], r["video"]): r["anwser"] for r in rows}
    for name, entry in db.items():
        spec = specs["hivau"][f"ucf-crime/videos/test/{name}.mp4"]
        fps, n = entry["fps"], entry["n_frames"]
        assert n == spec.num_frames
        frames = [[int(s * fps), int(e * fps)] for s, e in entry["events"]]
        if spec.events:
            assert frames == [[ev.start, ev.end] for ev in spec.events]
        for (s, e), clips in zip(frames, entry["clips"], strict=True):
            assert 0 <= s <= e < n
            for cs, ce in clips:
                assert s <= int(cs * fps) <= int(ce * fps) <= e
            assert all(round(t, 3) == t for span in clips for t in span)
        for e, caps in enumerate(entry["clips_caption"]):
            for c, text in enumerate(caps):
                assert (
                    answers[("clip", "caption", f"ucf-crime/clips/test/{name}_E{e}C{c}.mp4")]
                    == text
                )
        if spec.kind:
            label = KINDS[spec.kind].label
            assert entry["label"] == [label]
            assert "anomaly" in entry["video_summary_split"]["judgement"].lower()


# ----------------------------------------------------------------------------- Vad-Reasoning


def test_vad_reasoning_rows(roots: dict[str, Path], specs: dict) -> None:
    root = roots["vad_reasoning"]
    for split in ("test", "train"):
        path = root / f"Vad-Reasoning-SFT-{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        assert {r["anomaly_type"] == "Normal" for r in rows} == {True, False}
        for r in rows:
            spec = specs["vad_reasoning"][r["path"]]
            assert spec.split == split and r["video"] == Path(r["path"]).name
            assert r["source"] in ("UCF", "XD")
            assert _count_frames(root / r["path"]) == r["total_frames"] == spec.num_frames
            think, answer = r["think"], r["answer"]
            assert think.startswith("<think>") and think.endswith("</think>")
            assert answer.startswith("<answer>") and answer.endswith("</answer>")
            tags = dict(re.findall(r"<(\w+)>(.*?)</\1>", answer[8:-9]))
            steps = re.findall(r"<step(\d)>", think)
            reasoning = len(re.sub(r"<[^>]+>", " ", think).split())
            if r["anomaly_type"] == "Normal":
                assert set(r) == {
                    "source",
                    "video",
                    "anomaly_type",
                    "path",
                    "total_frames",
                    "think",
                    "answer",
                }
                assert steps == ["1", "2"] and set(tags) == {"which", "what", "why"}
                assert tags["which"] == "Normal" and spec.kind is None
                assert reasoning >= 60
            else:
                ev = spec.events[0]
                assert (r["start"], r["end"]) == (ev.start, ev.end)
                assert steps == ["1", "2", "3", "4"]
                assert set(tags) == {"which", "what", "when", "where", "why", "how"}
                assert tags["which"] == r["anomaly_type"]
                total = r["total_frames"]
                assert json.loads(tags["when"]) == [
                    round(r["start"] / total, 3),
                    round(r["end"] / total, 3),
                ]
                assert reasoning >= 100


# ----------------------------------------------------------------------------- VANE-Bench


def test_vane_layout_and_answers(roots: dict[str, Path], specs: dict) -> None:
    root = roots["vane"]
    groups = {p.relative_to(root).as_posix() for p in root.glob("*/*") if p.is_dir()}
    assert groups == {"Real-World/StreetCam", "Real-World/CampusCam", "AI-Generated/SampleGen"}
    n_questions = 0
    for spec in specs["vane"].values():
        category = root / Path(spec.relpath).parents[1]
        qa = ast.literal_eval((category / "video_qa" / f"{spec.name}_qa.txt").read_text())
        assert isinstance(qa, list) and 1 <= len(qa) <= 2
        for item in qa:
            assert set(item) == {"Q", "A"} and item["A"] in "ABCD"
            stem, *options = item["Q"].split("\n")
            assert stem.endswith("?") and [o[:3] for o in options] == ["A) ", "B) ", "C) ", "D) "]
            assert len({o[3:] for o in options}) == 4
        n_questions += len(qa)
        _, *options = qa[0]["Q"].split("\n")
        answer = options["ABCD".index(qa[0]["A"])][3:]
        shorts = {s[0].upper() + s[1:] for s in KINDS[spec.kind].short}
        assert answer in shorts and sum(o[3:] in shorts for o in options) == 1
        if len(qa) == 2 and qa[1]["Q"].startswith(("When", "At what point")):
            _, *options = qa[1]["Q"].split("\n")
            third = 3 * spec.events[0].start // spec.num_frames
            want = ("beginning", "middle", "end")[third]
            assert want in options["ABCD".index(qa[1]["A"])]
    assert n_questions > len(specs["vane"])
    kinds = {s.kind for s in specs["vane"].values()}
    assert {"sudden_appearance", "disappearance"} <= kinds
