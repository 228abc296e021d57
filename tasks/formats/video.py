"""Video files of a dataset folder: names, discovery, frame counts (PyAV)."""

from __future__ import annotations

from pathlib import Path

from tasks.base import TaskDataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


def video_id(name: str) -> str:
    """A video's id: the last path component without a video extension.

    Only known video extensions are removed, so dotted XD-Violence names
    (``A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A``) stay whole.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    for ext in VIDEO_EXTENSIONS:
        if lower.endswith(ext):
            return base[: -len(ext)]
    return base


class VideoFiles:
    """Video files found under a folder (recursive), looked up by video id.

    An id shared by several files (say a train and a test copy) is only an error when it is
    looked up.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._found: dict[str, list[Path]] = {}
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                    self._found.setdefault(video_id(path.name), []).append(path)

    def __len__(self) -> int:
        return len(self._found)

    def ids(self) -> list[str]:
        """All video ids, sorted."""
        return sorted(self._found)

    def get(self, vid: str) -> Path | None:
        """The file of ``vid``, None if absent.

        Raises:
            TaskDataError: several files have this id.
        """
        paths = self._found.get(vid, [])
        if len(paths) > 1:
            raise TaskDataError(f"{self.root}: several files for video {vid!r}: "
                                f"{', '.join(str(p) for p in paths)}")
        return paths[0] if paths else None


def frame_count(path: Path) -> tuple[int, str | None]:
    """``(frames, None)`` for a readable video, ``(0, reason)`` for an unreadable one.

    Frame counts come from :func:`harness.video.count_frames` (the container's count, or a
    full decode when it stores none). An unreadable file does not stop the loading of the
    dataset: the runner records it as an error and the metrics count it as missing.
    """
    from harness.video import VideoError, count_frames  # lazy: PyAV only when needed

    try:
        return count_frames(path), None
    except VideoError as exc:
        return 0, exc.reason
