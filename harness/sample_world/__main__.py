"""``python -m harness.sample_world --dataset NAME --out DIR [--seed S]``: write a dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.sample_world.catalog import DATASETS
from harness.sample_world.generate import ensure_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.sample_world",
        description="Generate a procedural sample dataset in its native layout.",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="dataset root (default: the cache, see harness.paths.cache_dir)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    root = ensure_sample(args.dataset, seed=args.seed, root=args.out)
    print(f"{args.dataset} (seed {args.seed}): {root}  [{time.perf_counter() - t0:.1f} s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
