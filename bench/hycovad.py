"""HyCoVAD's cost on the sample world (one run, tiny Qwen2-VL as captioner and LLM, CPU).

* ``hycovad.train_s``: ``vad-eval train --method hycovad`` with the tiny preset (the issue's
  limit: 10 minutes on this 2-core machine).
* ``hycovad.llm_share``: grid frames sent to the LLM for a decision over all grid frames
  scored, with the trained proposer's default threshold (the paper's efficiency claim: about
  half of the requests; goal <= 0.75).
* ``hycovad.proposer_frames_per_s``: grid frames the proposer scores per second, decoding
  included (info).
* ``hycovad.validator_over_proposer``: wall time of the whole pipeline over the proposer's
  alone on the same videos (info: what the LLM stage costs on top).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import emit
from harness.engines.hf import HFEngine
from harness.registry import TASKS
from harness.training import TrainJob
from methods.base import RunContext
from methods.hycovad.method import HyCoVADMethod
from methods.hycovad.train import train_hycovad


def main() -> None:
    samples = TASKS.get("complexvad")().load(None, "sample")  # type: ignore[operator]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "ckpt"
        t0 = time.perf_counter()
        train_hycovad(TrainJob(method="hycovad", task="complexvad", out=ckpt, split="sample"))
        train_s = time.perf_counter() - t0
        emit("hycovad.train_s", train_s, "s", "< 600", train_s < 600)
        engine = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=8)
        ctx = RunContext(batch_size=8)
        ssl = HyCoVADMethod(engine, checkpoint=str(ckpt), validator=False)
        full = HyCoVADMethod(engine, checkpoint=str(ckpt))
        ssl.predict(samples[0], ctx)  # warm-up (loading the network, first-call costs)
        full.predict(samples[0], ctx)
        t0 = time.perf_counter()
        for s in samples:
            ssl.predict(s, ctx)
        t_ssl = time.perf_counter() - t0
        t0 = time.perf_counter()
        records = [full.predict(s, ctx) for s in samples]
        t_full = time.perf_counter() - t0
        engine.close()
    summary = HyCoVADMethod.summarize(records)
    share = summary["suspect_fraction"]
    emit("hycovad.llm_share", share, "ratio", "<= 0.75 (paper: about 0.5)", share <= 0.75,
         suspects=summary["suspects"], grid_frames=summary["grid_frames"])
    emit("hycovad.proposer_frames_per_s", summary["grid_frames"] / t_ssl, "frames/s", "info",
         None, seconds=round(t_ssl, 3))
    emit("hycovad.validator_over_proposer", t_full / t_ssl, "ratio", "info", None,
         pipeline_s=round(t_full, 3), requests={k: v for k, v in summary.items()
                                                 if k.startswith("requests_")})


if __name__ == "__main__":
    main()
