"""XD-Violence's native files.

* ``annotations.txt`` lists the ANOMALOUS test videos only: ``name s1 e1 s2 e2 ...`` (0-based
  frames, an even number of values, at least one pair). Some names carry a stray ``.mp4``; the
  last line may lack a newline. Every other test video is normal.
* Video names carry the classes: ``..._label_B2-G-0`` -> codes ``B2``, ``G`` (``0`` = none).
  ``A`` normal; ``B1`` Fighting, ``B2`` Shooting, ``B4`` Riot, ``B5`` Abuse, ``B6`` Car accident,
  ``G`` Explosion. Several classes are joined with ``","`` in name order.
* The test list comes from a LAVAD-style ``anomaly_test.txt`` (see :mod:`tasks.formats.lavad`;
  its label column uses ``4`` or ``A`` for normal videos) or from a ``videos/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.base import NORMAL, TaskDataError
from tasks.formats.text import read_lines
from tasks.formats.video import video_id

XD_CLASSES: dict[str, str] = {
    "A": NORMAL,
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}

#: Label-column values of a LAVAD-style XD index that mean "normal".
XD_INDEX_NORMAL = frozenset({"4", "A"})


@dataclass(frozen=True)
class XdAnnotation:
    """Intervals of one anomalous video (``(start, end)`` as written) and its line."""

    video_id: str
    intervals: tuple[tuple[int, int], ...]
    lineno: int


def xd_category(name: str) -> str:
    """Category from an XD-Violence video name.

    ``"v=...__#1_label_B4-0-0"`` -> ``"Riot"``; ``"..._label_B2-G-0"`` ->
    ``"Shooting,Explosion"``; ``"..._label_A"`` -> ``"Normal"``.

    Raises:
        ValueError: no ``_label_`` part, an unknown code, or ``A`` mixed with other codes.
    """
    vid = video_id(name)
    if "_label_" not in vid:
        raise ValueError(f"XD-Violence name {vid!r} has no '_label_' part")
    codes = [c for c in vid.rsplit("_label_", 1)[1].split("-") if c != "0"]
    unknown = [c for c in codes if c not in XD_CLASSES]
    if unknown or not codes:
        raise ValueError(f"XD-Violence name {vid!r}: unknown label code(s) {unknown or codes}")
    names = list(dict.fromkeys(XD_CLASSES[c] for c in codes))
    if NORMAL in names and len(names) > 1:
        raise ValueError(f"XD-Violence name {vid!r} mixes 'A' (normal) with anomaly codes")
    return ",".join(names)


def read_xd_annotations(path: Path) -> dict[str, XdAnnotation]:
    """``{video_id: XdAnnotation}`` of ``annotations.txt``, file order.

    Raises:
        TaskDataError: no interval, an odd number of values, a non-integer or negative frame,
            ``end < start``, a repeated video, a normal (``label_A``) name.
    """
    out: dict[str, XdAnnotation] = {}
    for line in read_lines(path):
        vid = video_id(line.fields[0])
        values = [
            line.int_at(i, f"{'se'[(i - 1) % 2]}{(i - 1) // 2 + 1}")
            for i in range(1, len(line.fields))
        ]
        if not values or len(values) % 2:
            raise line.error("intervals", f"expected start/end pairs, got {len(values)} value(s)")
        pairs = []
        for k in range(0, len(values), 2):
            s, e = values[k], values[k + 1]
            if s < 0 or e < s:
                raise line.error(f"interval {k // 2 + 1}", f"invalid interval ({s}, {e})")
            pairs.append((s, e))
        if vid in out:
            raise line.error("name", f"video {vid!r} already annotated on line {out[vid].lineno}")
        try:
            normal = xd_category(vid) == NORMAL
        except ValueError:
            normal = False  # names without XD label codes are checked by the task
        if normal:
            raise line.error("name", f"video {vid!r} is normal (label A) but has intervals")
        out[vid] = XdAnnotation(vid, tuple(pairs), line.lineno)
    if not out:
        raise TaskDataError(f"{path}: annotation file lists no videos")
    return out
