"""Registers the built-in methods in :data:`harness.registry.METHODS`."""

from __future__ import annotations

from harness.registry import METHODS
from methods.baselines import ConstantScore, FrameDiff
from methods.frozen import FrozenBaseline

for _cls in (FrozenBaseline, ConstantScore, FrameDiff):
    METHODS.add(_cls.name, _cls)
