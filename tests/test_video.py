"""Video decoding: frame selection by index, one pass, pixel budgets, error records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.video import VideoError, count_frames, probe, read_frames, target_size
from tests.videos import frame_ids, write_counting_video

N = 40


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_counting_video(tmp_path_factory.mktemp("v") / "count.mp4", N)


def test_probe_and_count(video: Path) -> None:
    info = probe(video)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(30)
    assert count_frames(video) == N


def test_frames_by_index_any_order_with_repeats(video: Path) -> None:
    wanted = [5, 0, 39, 5, 13]
    fr = read_frames(video, wanted)
    assert fr.indices.tolist() == [0, 5, 13, 39]
    assert frame_ids(fr.take(wanted), N) == wanted
    assert fr.decoded == 40  # one sequential pass up to the largest index


def test_seek_strategy_gives_same_frames(video: Path) -> None:
    wanted = [3, 17, 25, 38]
    a = read_frames(video, wanted, strategy="sequential")
    b = read_frames(video, wanted, strategy="seek")
    assert frame_ids(b.frames, N) == wanted
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).max() <= 2


def test_stops_after_last_wanted_index(video: Path) -> None:
    assert read_frames(video, [2, 4]).decoded == 5


def test_max_pixels(video: Path) -> None:
    fr = read_frames(video, [0], max_pixels=32 * 24)
    assert fr.frames.shape[1:] == (24, 32, 3)
    assert target_size(64, 48, None) == (64, 48)
    w, h = target_size(1920, 1080, 448 * 448)
    assert w * h <= 448 * 448 and w % 2 == 0 and h % 2 == 0


@pytest.mark.parametrize("strategy", ["sequential", "seek"])
def test_past_end_is_clamped_and_counted(video: Path, strategy: str) -> None:
    fr = read_frames(video, [38, 45, 46], strategy=strategy)  # type: ignore[arg-type]
    assert fr.clamped == 2
    assert frame_ids(fr.take([45]), N) == [39]


@pytest.mark.parametrize(
    "content,reason",
    [(None, "file not found"), (b"", "file is empty"), (b"\x00garbage" * 100, "cannot open")],
)
def test_bad_files_raise_video_error(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoError) as err:
        read_frames(path, [0])
    assert reason in err.value.reason
    assert err.value.path == str(path)


def test_truncated_file(tmp_path: Path, video: Path) -> None:
    data = video.read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError):
        read_frames(bad, list(range(N)))
