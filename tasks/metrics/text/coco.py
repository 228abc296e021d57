"""COCO caption metrics (BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D; SPICE) from pycocoevalcap.

The numbers are pycocoevalcap 1.2's (the coco-caption code): this module feeds it, in one
pass per metric over the whole corpus, and keeps the Java parts under control.

Inputs
    ``refs`` maps an item id to its reference captions (a list of one or more strings),
    ``hyps`` maps the same ids to one hypothesis caption. Both must have the same ids
    (``ValueError`` naming the differing ids otherwise). Results follow the order of ``hyps``.

Text clean-up (before anything else)
    Every caption has its whitespace runs (newlines included) replaced with one space and is
    stripped: pycocoevalcap's PTB tokenizer and METEOR talk to Java one caption per line, so
    a newline inside a caption would shift every later caption. METEOR's input also has
    ``"|||"`` (METEOR's field separator) replaced with a space; pycocoevalcap deletes it from
    hypotheses only, which matters only with ``tokenize=False`` (the PTB tokenizer already
    splits it into single ``"|"`` tokens).

Tokenisation (``tokenize=True``, the COCO protocol)
    The Stanford PTB tokenizer in pycocoevalcap's jar (``-preserveLines -lowerCase``) runs
    once on all references and hypotheses together, then pycocoevalcap's punctuation tokens
    are removed, as ``PTBTokenizer.tokenize`` does. The Java call is made here rather than
    through ``PTBTokenizer`` so that its temporary file goes to the system temporary
    directory, not into site-packages, and so that the line count is checked. An empty (or
    all-punctuation) caption becomes ``""``; it scores 0 on every metric without error.
    With ``tokenize=False`` the cleaned captions are scored as given (split on spaces).

Metrics
    ``bleu`` gives ``bleu_1``..``bleu_4`` (corpus BLEU with the "closest" reference length;
    per item: pycocoevalcap's sentence BLEU), ``meteor`` (one METEOR 1.5 Java process for
    the whole corpus, ``-l en -norm``, closed before returning; the corpus score is METEOR's
    aggregate over all items' statistics, not the mean of the per-item scores),
    ``rouge_l`` (mean of per-item ROUGE-L F with beta 1.2) and ``cider`` (CIDEr-D with its
    document frequencies taken from this corpus's references, so it depends on the corpus).
    Java missing: with ``tokenize=True`` every metric is reported in ``unavailable``, with
    ``tokenize=False`` only ``meteor`` is; an unavailable metric never appears as a number.

SPICE (:func:`spice_score`)
    pycocoevalcap's SPICE 1.0 needs Stanford CoreNLP 3.6.0 jars that pycocoevalcap would
    download; here they must be provided through ``VAD_EVAL_CORENLP_DIR``, else SPICE is
    :class:`Unavailable`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer import ptbtokenizer as _ptb

from tasks.metrics.text.assets import Unavailable, java_available

__all__ = [
    "COCO_METRICS",
    "CORENLP_ENV",
    "CocoResult",
    "coco_caption_scores",
    "spice_score",
]

COCO_METRICS = ("bleu", "meteor", "rouge_l", "cider")
CORENLP_ENV = "VAD_EVAL_CORENLP_DIR"
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
_BLEU_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4")
_PTB_JAR = Path(_ptb.__file__).resolve().parent / _ptb.STANFORD_CORENLP_3_4_1_JAR
_PTB_PUNCTUATION = frozenset(_ptb.PUNCTUATIONS)


@dataclass(frozen=True)
class CocoResult:
    """Scores of :func:`coco_caption_scores`.

    ``corpus``: corpus score per key (``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``,
    ``cider``) of the metrics computed. ``per_item``: key -> item id -> the per-item score
    pycocoevalcap gives for that key. ``unavailable``: metric name -> why it was not computed.
    """

    corpus: dict[str, float] = field(default_factory=dict)
    per_item: dict[str, dict[str, float]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"captions must be strings, got {type(text).__name__}")
    return " ".join(text.split())


def _check_ids(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, str]) -> list[str]:
    """The ids in ``hyps`` order, after checking both mappings have the same ids and that
    every reference entry is a non-empty list of strings."""
    missing_refs = [i for i in hyps if i not in refs]
    missing_hyps = [i for i in refs if i not in hyps]
    if missing_refs or missing_hyps:
        parts = []
        if missing_refs:
            parts.append(f"ids without references: {_show(missing_refs)}")
        if missing_hyps:
            parts.append(f"ids without a hypothesis: {_show(missing_hyps)}")
        raise ValueError("; ".join(parts))
    for i, rs in refs.items():
        if isinstance(rs, str) or len(rs) == 0:
            raise ValueError(f"refs[{i!r}] must be a non-empty list of reference strings")
    return list(hyps)


def _show(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def _ptb_tokenize(texts: list[str]) -> list[str]:
    """PTB-tokenised, lower-cased, punctuation-free versions of cleaned ``texts``, one Java
    call for all of them (empty texts are not sent)."""
    out = [""] * len(texts)
    todo = [i for i, t in enumerate(texts) if t]
    if not todo:
        return out
    with tempfile.TemporaryDirectory(prefix="vad-eval-ptb-") as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_bytes("\n".join(texts[i] for i in todo).encode("utf-8"))
        cmd = [
            "java", "-cp", str(_PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines", "-lowerCase", "-encoding", "utf-8", str(path),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"PTB tokenizer failed (exit {proc.returncode}): {err}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(todo):
        raise RuntimeError(f"PTB tokenizer returned {len(lines)} lines for {len(todo)} captions")
    for i, line in zip(todo, lines, strict=True):
        out[i] = " ".join(w for w in line.rstrip().split(" ") if w not in _PTB_PUNCTUATION)
    return out


def _close(scorer: Meteor) -> None:
    """Stop the METEOR Java process of ``scorer`` (pycocoevalcap only does it on GC)."""
    proc = scorer.meteor_p
    with scorer.lock:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.kill()
        proc.wait()


def _meteor(
    scorer: Meteor, gts: dict[str, list[str]], res: dict[str, list[str]]
) -> tuple[float, list[float]]:
    """Corpus and per-item METEOR 1.5 of all items through the one process of ``scorer``."""
    gts = {i: [_clean(r.replace("|||", " ")) for r in rs] for i, rs in gts.items()}
    res = {i: [_clean(h.replace("|||", " ")) for h in hs] for i, hs in res.items()}
    score, scores = scorer.compute_score(gts, res)
    return float(score), [float(s) for s in scores]


def coco_caption_scores(
    refs: Mapping[str, Sequence[str]],
    hyps: Mapping[str, str],
    metrics: Sequence[str] = COCO_METRICS,
    tokenize: bool = True,
) -> CocoResult:
    """pycocoevalcap scores of ``hyps`` against ``refs`` (see the module docstring).

    ``metrics`` is any subset of :data:`COCO_METRICS`.
    """
    return coco_caption_groups({"": (refs, hyps)}, metrics, tokenize)[""]


def coco_caption_groups(
    groups: Mapping[str, tuple[Mapping[str, Sequence[str]], Mapping[str, str]]],
    metrics: Sequence[str] = COCO_METRICS,
    tokenize: bool = True,
) -> dict[str, CocoResult]:
    """:func:`coco_caption_scores` of several corpora (``{name: (refs, hyps)}``), each scored
    as its own corpus (CIDEr's document frequencies, BLEU's and METEOR's corpus statistics
    from that group only), with one PTB tokenizer call and one METEOR process for all."""
    unknown = [m for m in metrics if m not in COCO_METRICS]
    if unknown:
        raise ValueError(f"unknown caption metrics {unknown}; choose from {COCO_METRICS}")
    ids = {name: _check_ids(refs, hyps) for name, (refs, hyps) in groups.items()}
    results = {name: CocoResult() for name in groups}
    wanted = [m for m in COCO_METRICS if m in metrics]
    if not wanted:
        return results

    ref_texts = {name: {i: [_clean(r) for r in refs[i]] for i in ids[name]}
                 for name, (refs, _) in groups.items()}
    hyp_texts = {name: {i: _clean(hyps[i]) for i in ids[name]}
                 for name, (_, hyps) in groups.items()}
    java_reason = java_available()
    if tokenize and java_reason is not None:
        for result in results.values():
            for m in wanted:
                result.unavailable[m] = f"the PTB tokenizer needs Java: {java_reason}"
        return results
    if "meteor" in wanted and java_reason is not None:
        for result in results.values():
            result.unavailable["meteor"] = f"METEOR 1.5 needs Java: {java_reason}"
    # started first: the JVM loads METEOR's paraphrase table while Python does the rest
    meteor = Meteor() if "meteor" in wanted and java_reason is None else None
    try:
        if tokenize:
            flat = [r for name in groups for i in ids[name] for r in ref_texts[name][i]]
            flat += [hyp_texts[name][i] for name in groups for i in ids[name]]
            tokens = iter(_ptb_tokenize(flat))
            ref_texts = {name: {i: [next(tokens) for _ in ref_texts[name][i]]
                                for i in ids[name]} for name in groups}
            hyp_texts = {name: {i: next(tokens) for i in ids[name]} for name in groups}
        for name in groups:
            gts = {i: ref_texts[name][i] for i in ids[name]}
            res = {i: [hyp_texts[name][i]] for i in ids[name]}
            _score_group(results[name], ids[name], gts, res, wanted, meteor)
    finally:
        if meteor is not None:
            _close(meteor)
    return results


def _score_group(result: CocoResult, ids: list[str], gts: dict[str, list[str]],
                 res: dict[str, list[str]], wanted: list[str], meteor: Meteor | None) -> None:
    if "bleu" in wanted:
        score, scores = Bleu(4).compute_score(gts, res, verbose=0)
        for n, key in enumerate(_BLEU_KEYS):
            result.corpus[key] = float(score[n])
            result.per_item[key] = _by_id(ids, scores[n])
    if "rouge_l" in wanted:
        score, scores = Rouge().compute_score(gts, res)
        result.corpus["rouge_l"] = float(score)
        result.per_item["rouge_l"] = _by_id(ids, scores)
    if "cider" in wanted:
        score, scores = Cider().compute_score(gts, res)
        result.corpus["cider"] = float(score)
        result.per_item["cider"] = _by_id(ids, scores)
    if meteor is not None:
        corpus, items = _meteor(meteor, gts, res)
        result.corpus["meteor"] = corpus
        result.per_item["meteor"] = _by_id(ids, items)


def _by_id(ids: list[str], scores: Any) -> dict[str, float]:
    values = [float(s) for s in scores]
    if len(values) != len(ids):
        raise RuntimeError(f"pycocoevalcap returned {len(values)} scores for {len(ids)} items")
    return dict(zip(ids, values, strict=True))


def _spice_unavailable() -> str | None:
    """Why SPICE cannot run here, or ``None``."""
    root = os.environ.get(CORENLP_ENV, "")
    need = " and ".join(SPICE_JARS)
    if not root:
        return (
            f"SPICE needs Stanford CoreNLP 3.6.0 ({need}, from stanford-corenlp-full-2015-12-09"
            f".zip), which cannot be downloaded at run time: set {CORENLP_ENV} to their folder"
        )
    missing = [j for j in SPICE_JARS if not (Path(root) / j).is_file()]
    if missing:
        return f"{CORENLP_ENV}={root} lacks {', '.join(missing)}"
    return java_available()


def _stage_corenlp(root: Path) -> None:
    """Link the CoreNLP jars into pycocoevalcap's ``spice/lib`` so that it never downloads;
    a real file already there is left alone."""
    import pycocoevalcap.spice as spice_pkg

    lib = Path(next(iter(spice_pkg.__path__))) / "lib"
    for jar in SPICE_JARS:
        src = (root / jar).resolve()
        dest = lib / jar
        if dest.is_symlink():
            if dest.resolve() == src:
                continue
        elif dest.exists():
            continue
        tmp = lib / f".{jar}.{os.getpid()}.tmp"
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(src)
            os.replace(tmp, dest)
        except OSError as exc:
            raise RuntimeError(f"cannot link {src} into {lib} for SPICE: {exc}") from exc


def spice_score(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, str]) -> float | Unavailable:
    """Corpus SPICE F (mean over items of pycocoevalcap's "All" F) of the raw captions.

    No PTB tokenisation (SPICE parses the sentences itself). Needs Java (8 GB heap, as
    pycocoevalcap asks) and ``VAD_EVAL_CORENLP_DIR`` holding ``stanford-corenlp-3.6.0.jar``
    and ``stanford-corenlp-3.6.0-models.jar``, which are linked into pycocoevalcap's
    ``spice/lib`` (so its ``spice/`` folder must be writable; SPICE also writes its
    ``tmp``/``cache`` folders there). Otherwise returns :class:`Unavailable`. NaN when SPICE
    gives NaN for an item, as pycocoevalcap does.
    """
    ids = _check_ids(refs, hyps)
    reason = _spice_unavailable()
    if reason is not None:
        return Unavailable("spice", reason)
    _stage_corenlp(Path(os.environ[CORENLP_ENV]))
    from pycocoevalcap.spice.spice import Spice

    gts = {i: [str(r) for r in refs[i]] for i in ids}
    res = {i: [str(hyps[i])] for i in ids}
    score, _ = Spice().compute_score(gts, res)
    return float(score)
