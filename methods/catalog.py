"""Registers the built-in methods in :data:`harness.registry.METHODS`."""

from __future__ import annotations

from harness.registry import METHODS
from methods.anom_pi.method import AnomPiMethod, AnomPiPassive
from methods.baselines import ConstantScore, FrameDiff
from methods.copra.method import CopraMethod, CopraNoPrior, CopraStatic
from methods.frozen import FrozenBaseline
from methods.hycovad.method import HyCoVADMethod
from methods.vad_r1.method import VadR1Method

for _cls in (FrozenBaseline, CopraMethod, CopraNoPrior, CopraStatic, VadR1Method, HyCoVADMethod,
             AnomPiMethod, AnomPiPassive, ConstantScore, FrameDiff):
    METHODS.add(_cls.name, _cls)
