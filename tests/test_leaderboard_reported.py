"""``leaderboard/reported.yaml`` against its independent reference: the text copies of the seed
papers in ``../shared/seeds`` (found next to the ``reference_dir`` fixture's directory).

Every printed cell must occur in its paper's text, and every stored metric must be one of its
row's printed numbers (as printed, or a percentage divided by 100). A handful of well-known
results are also checked by hand, with the line of the paper they come from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from leaderboard.rows import REPORTED_PATH, load_reported, reported_rows

#: a number token: not part of a longer number on either side
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PLACEHOLDERS = {"", "-", "\u2013", "\u2014"}  # cells that hold no value ('-', en/em dash)


@pytest.fixture(scope="module")
def seeds_dir(reference_dir: Path) -> Path:
    # reference_dir is <shared>/data/reference; the papers' text copies are in <shared>/seeds
    path = Path(reference_dir).parent.parent / "seeds"
    if not path.is_dir():
        if os.environ.get("CI") == "true":  # CI has ../shared beside the clone
            pytest.fail(f"seed papers not found at {path}")
        pytest.skip(f"seed papers not found at {path}")
    return path


@pytest.fixture(scope="module")
def reported() -> dict[str, Any]:
    return yaml.safe_load(REPORTED_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def paper_text(seeds_dir: Path, reported: dict[str, Any]) -> dict[str, str]:
    return {key: (seeds_dir / f"{paper['seed']}.txt").read_text(encoding="utf-8")
            for key, paper in reported["papers"].items()}


def _occurs(number: str, text: str) -> bool:
    """``number`` occurs in ``text`` as a whole number (``58`` does not match ``58.32``)."""
    return re.search(r"(?<![\d.])" + re.escape(number) + r"(?!\d|\.\d)", text) is not None


def _cell_numbers(cell: Any) -> tuple[float | None, list[str]]:
    """``(value, tokens)`` of a printed cell: ``value`` is its leading number (``None`` for a
    text cell), ``tokens`` every number printed in it, '+' signs dropped
    (``'0.198 (+0.019)'`` -> ``(0.198, ['0.198', '0.019'])``)."""
    text = str(cell).strip().lstrip("+").strip()
    lead = _NUMBER.match(text)
    if lead is None or (lead.end() < len(text) and not text[lead.end():].lstrip()
                        .startswith("(")):
        return None, []
    return float(lead.group()), _NUMBER.findall(text.replace("+", ""))


def test_cell_parser() -> None:
    assert _cell_numbers("84.30") == (84.30, ["84.30"])
    assert _cell_numbers("+0.65") == (0.65, ["0.65"])
    assert _cell_numbers("-0.24") == (-0.24, ["-0.24"])
    assert _cell_numbers("0.198 (+0.019)") == (0.198, ["0.198", "0.019"])
    assert _cell_numbers("7B") == (None, [])
    assert _cell_numbers("T1 + T2 + T3") == (None, [])
    assert _cell_numbers("3D CNN + CVT") == (None, [])
    assert _occurs("58", "MemAE [38] 58\n") and not _occurs("58", "NNFormer 58.32")
    assert _occurs("84.31", "| \\columncolorbaselinecolor84.31 |")


def test_every_row_is_complete(reported: dict[str, Any], seeds_dir: Path) -> None:
    papers = reported["papers"]
    for key, paper in papers.items():
        assert (seeds_dir / f"{paper['seed']}.txt").is_file(), key
    problems = []
    for i, row in enumerate(reported["rows"]):
        if row.get("paper") not in papers:
            problems.append(f"rows[{i}]: paper {row.get('paper')!r} not in papers")
        for field in ("table", "row", "method", "task", "metrics", "as_reported"):
            if row.get(field) in (None, "", {}):
                problems.append(f"rows[{i}]: missing {field}")
        for k, v in (row.get("metrics") or {}).items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                problems.append(f"rows[{i}]: metrics.{k} = {v!r} is not a number")
    assert problems == [], "\n".join(problems)
    assert len(reported["rows"]) == len(reported_rows())


def test_cells_occur_in_paper_and_metrics_match_cells(reported: dict[str, Any],
                                                      paper_text: dict[str, str]) -> None:
    failures: list[str] = []
    checked = 0
    for i, row in enumerate(reported["rows"]):
        text = paper_text[row["paper"]]
        flat = " ".join(text.split())
        where = f"rows[{i}] {row['paper']} Table {row['table']} {row['row']!r}"
        values = []
        for column, cell in (row.get("as_reported") or {}).items():
            value, tokens = _cell_numbers(cell)
            if value is None:
                label = " ".join(str(cell).split())
                if label not in _PLACEHOLDERS and label not in flat:
                    failures.append(f"{where}: text cell {column!r}={cell!r} not in the paper")
                continue
            values.append(value)
            for tok in tokens:
                checked += 1
                if not _occurs(tok, text):
                    failures.append(f"{where}: {column!r}={cell!r}: {tok} not in the paper")
        for key, v in row["metrics"].items():
            if not any(abs(v - x) <= 1e-9 or abs(v - x / 100) <= 1e-9 for x in values):
                failures.append(f"{where}: metrics.{key}={v} is no printed value "
                                f"(as printed or / 100) of {row.get('as_reported')}")
    print("\n".join(failures))
    assert checked > 500  # the check ran over the printed numbers, not over nothing
    assert failures == [], f"{len(failures)} mismatches:\n" + "\n".join(failures)


def _find(reported: dict[str, Any], paper: str, table: str, row: str, task: str,
          variant: str | None = None) -> dict[str, Any]:
    hits = [r for r in reported["rows"] if r["paper"] == paper and str(r["table"]) == table
            and r["row"] == row and r["task"] == task
            and (variant is None or r.get("variant") == variant)]
    assert len(hits) == 1, (paper, table, row, task, len(hits))
    return hits[0]


# (paper, table, row label, task, line of the paper's text copy, expected metrics)
SPOT_CHECKS = [
    ("copra", "1", "RTFM Tian et al. (2021)", "ucf_crime",
     "| RTFM Tian et al. (2021) | 84.30 |", {"roc_auc": 0.8430}),
    ("copra", "1", "LAVAD Zanella et al. (2024)", "ucf_crime",
     "| LAVAD Zanella et al. (2024) | 80.28 |", {"roc_auc": 0.8028}),
    ("copra", "1", "InternVL2-8B", "ucf_crime",
     "| \\rowcolornvidiagreen InternVL2-8B | 87.14 |", {"roc_auc": 0.8714}),
    ("copra", "1", "LAVAD Zanella et al. (2024)", "xd_violence",
     "| LAVAD Zanella et al. (2024) | 62.01 |", {"pr_auc": 0.6201}),
    ("copra", "5", "InternVL2-8B + COPRA", "vru_accident_qa",
     "| \\rowcolornvidiagreen InternVL2-8B + COPRA | 49.70 | 50.41 | 51.50 | 50.51 | 50.40 |",
     {"acc_avg": 0.5040}),
    ("hycovad", "1", "HyCoVAD (Ours)", "complexvad", "HyCoVAD (Ours) 72.5",
     {"roc_auc": 0.725}),
    ("hycovad", "1", "MemAE [38]", "complexvad", "MemAE [38] 58", {"roc_auc": 0.58}),
    ("hycovad", "2", "NNFormer / T1 + T2 + T3 + T4 / Object", "complexvad",
     "NNFormer T1 + T2 + T3 + T4 Object 56 54 55 58.32",
     {"recall": 0.56, "precision": 0.54, "f1": 0.55, "roc_auc": 0.5832}),
    ("hycovad", "3", "No Rule-Based Filtering", "complexvad",
     "No Rule-Based Filtering Rule component removed 59.2", {"roc_auc": 0.592}),
    ("vad_r1", "2", "Vad-R1 (Ours)", "vad_reasoning", None,
     {"accuracy": 0.875, "f1": 0.862, "miou": 0.713, "bleu_2": 0.233}),
    ("vad_r1", "2", "GPT-4o [40]", "vad_reasoning", None, {"accuracy": 0.711, "f1": 0.760}),
    ("vad_r1", "3", "Vad-R1 (ours)", "vane", None, {"acc_sora": 0.4130, "acc_ped2": 0.6389}),
]


@pytest.mark.parametrize(("paper", "table", "label", "task", "line", "expected"), SPOT_CHECKS,
                         ids=[f"{c[0]}-T{c[1]}-{c[2]}-{c[3]}" for c in SPOT_CHECKS])
def test_spot_checks_by_hand(reported: dict[str, Any], paper_text: dict[str, str], paper: str,
                             table: str, label: str, task: str, line: str | None,
                             expected: dict[str, float]) -> None:
    if line is not None:  # the line of the paper these numbers were read from by hand
        assert line in paper_text[paper]
    row = _find(reported, paper, table, label, task)
    for key, value in expected.items():
        assert row["metrics"][key] == pytest.approx(value, abs=1e-12), key


def test_vad_r1_table2_line_by_hand(paper_text: dict[str, str]) -> None:
    # Table 2, last row, as laid out in the text copy (markdown table with padded cells)
    cells = None
    for line in paper_text["vad_r1"].splitlines():
        if line.startswith("| Vad-R1 (Ours)") and "7B" in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            break
    assert cells == ["Vad-R1 (Ours)", "7B", "0.233", "0.406", "0.194", "0.875", "0.862",
                     "0.713", "0.770", "0.706"]


def test_copra_ablation_rows_are_variants(reported: dict[str, Any]) -> None:
    # COPRA Table 3, step 3: frozen 81.31, GRPO static 83.00, COPRA dynamic 86.75
    rows = [r for r in reported["rows"] if r["paper"] == "copra" and str(r["table"]) == "3"
            and r["row"] == "Initial + Retrieval + Smoothing + Weighting (Step 3)"]
    assert sorted(r["metrics"]["roc_auc"] for r in rows) == [0.8131, 0.83, 0.8675]
    assert all(r.get("variant") for r in rows)


# --------------------------------------------------------------------------- load_reported

_GOOD_ROW = {"paper": "p", "table": "1", "row": "X", "method": "x", "task": "ucf_crime",
             "metrics": {"roc_auc": 0.5}}


def _yaml(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "reported.yaml"
    path.write_text(yaml.safe_dump({"papers": {"p": {"seed": "s", "title": "T"}}, "rows": rows}))
    return path


@pytest.mark.parametrize("field", ["paper", "table", "row", "method", "task", "metrics"])
def test_load_reported_names_row_and_missing_field(tmp_path: Path, field: str) -> None:
    bad = {k: v for k, v in _GOOD_ROW.items() if k != field}
    path = _yaml(tmp_path, [_GOOD_ROW, bad])
    with pytest.raises(ValueError) as err:
        load_reported(path)
    msg = str(err.value)
    assert str(path) in msg and "rows[1]" in msg and field in msg, msg


def test_load_reported_rejects_unknown_paper_and_non_numbers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"rows\[0\].*'q'"):
        load_reported(_yaml(tmp_path, [{**_GOOD_ROW, "paper": "q"}]))
    with pytest.raises(ValueError, match=r"rows\[0\].*metrics\.roc_auc"):
        load_reported(_yaml(tmp_path, [{**_GOOD_ROW, "metrics": {"roc_auc": "84.3"}}]))
    with pytest.raises(ValueError, match=r"rows\[0\].*metrics\.roc_auc"):
        load_reported(_yaml(tmp_path, [{**_GOOD_ROW, "metrics": {"roc_auc": True}}]))
    papers, rows = load_reported(_yaml(tmp_path, [_GOOD_ROW]))
    assert list(papers) == ["p"] and rows == [_GOOD_ROW]
