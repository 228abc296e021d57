"""Registries: built-ins, entry points, module:Class references, did-you-mean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.registry import METHODS, TASKS, Registry, UnknownNameError


def test_did_you_mean() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'frozen'"):
        METHODS.get("frozn")


def test_module_colon_class() -> None:
    from methods.baselines import ConstantScore

    assert METHODS.get("methods.baselines:ConstantScore") is ConstantScore
    with pytest.raises(UnknownNameError, match="has no attribute"):
        METHODS.get("methods.baselines:Nope")


def test_entry_point_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "thirdparty_vad.py"
    pkg.write_text("from methods.baselines import ConstantScore\n"
                   "class Mine(ConstantScore):\n    name = 'mine'\n")
    dist = tmp_path / "thirdparty_vad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-vad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[vad_eval.methods]\nmine = thirdparty_vad:Mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[object] = Registry("method", ("methods.catalog",))
    assert "mine" in reg.names()
    assert reg.get("mine").__name__ == "Mine"  # type: ignore[attr-defined]
    sys.modules.pop("thirdparty_vad", None)


def test_builtins_are_listed() -> None:
    assert {"frozen", "constant", "frame_diff"} <= set(METHODS.names())
    assert {"ucf_crime", "xd_violence", "complexvad"} <= set(TASKS.names())
