"""The ``vad-eval`` command.

Commands::

    vad-eval --method M --task T [options]        run an evaluation (also: ``vad-eval run ...``)
    vad-eval list                                 tasks, methods and engines, one line each
    vad-eval describe --task T --data-root DIR --json
    vad-eval score --task T --data-root DIR --scores FILE --format FMT [--json]
    vad-eval score --task T --data-root DIR --predictions DIR_OR_FILE --format FMT [--json]
    vad-eval leaderboard [--runs RUNS_DIR] [--port P] [--host 127.0.0.1]
    vad-eval submit FILE.json [--runs RUNS_DIR]      validate and index a result file
    vad-eval submit --schema                      print the submission JSON schema
    vad-eval train --method M --task T --out CKPT [--model M] [--steps N] [--config FILE|PRESET]
                                                  train a method; evaluate the result with
                                                  ``vad-eval --method M --checkpoint CKPT``

``--level clip|event|video`` is short for ``--task-arg level=...`` (the ``hivau`` task).

``--executor ray --workers N`` predicts with N Ray actors, one engine each (see
:mod:`harness.executors`); results and ``--resume`` do not depend on the executor.

Exit codes: 0 success, 2 bad usage or input (the message names the file or field), 1 other
failures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.config import ConfigError, build_config, load_yaml, parse_kv
from harness.registry import ENGINES, METHODS, TASKS, UnknownNameError

SUBCOMMANDS = ("run", "list", "describe", "score", "leaderboard", "submit", "train")


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name (see `vad-eval list`)")
    p.add_argument("--data-root", default=None, help="dataset directory in its native layout")
    p.add_argument("--split", default=None, help="test | sample (default: sample without "
                   "--data-root, test with it)")
    p.add_argument("--task-arg", action="append", metavar="KEY=VALUE",
                   help="task setting, e.g. label_convention=exclusive (repeatable)")
    p.add_argument("--level", default=None, choices=["clip", "event", "video", "all"],
                   help="hivau: question level (default: all three)")


def _task_args(args: argparse.Namespace) -> dict[str, Any]:
    """``--task-arg`` values plus ``--level``."""
    out = parse_kv(args.task_arg, "--task-arg")
    if getattr(args, "level", None):
        if "level" in out and out["level"] != args.level:
            raise ConfigError(f"--level {args.level} contradicts --task-arg level={out['level']}")
        out["level"] = args.level
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vad-eval",
        description="Evaluate video anomaly detection methods on benchmark protocols.",
    )
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("run", help="run an evaluation (the default command)")
    r.add_argument("--method", default=None, help="method name, or package.module:Class")
    r.add_argument("--task", default=None, help="task name")
    r.add_argument("--model", default=None, help="hub id or local path (default: tiny model)")
    r.add_argument("--data-root", default=None)
    r.add_argument("--split", default=None, choices=["test", "sample"])
    r.add_argument("--engine", default=None, help="inference engine (default hf)")
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--out", default=None, help="runs directory (default ./runs)")
    r.add_argument("--run-name", default=None)
    r.add_argument("--config", default=None, help="YAML file with the same keys as the flags")
    r.add_argument("--limit", type=int, default=None, help="first N samples only")
    r.add_argument("--resume", action="store_true", default=None,
                   help="continue the run (skips finished videos)")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--strict", action="store_true", default=None,
                   help="stop at the first unreadable video")
    r.add_argument("--device", default=None, help="auto | cpu | cuda")
    r.add_argument("--dtype", default=None, help="auto | float32 | bfloat16")
    r.add_argument("--max-pixels", type=int, default=None, help="pixel budget per frame")
    r.add_argument("--task-arg", action="append", metavar="KEY=VALUE")
    r.add_argument("--level", default=None, choices=["clip", "event", "video", "all"],
                   help="hivau: question level (default: all three)")
    r.add_argument("--method-arg", action="append", metavar="KEY=VALUE")
    r.add_argument("--checkpoint", default=None,
                   help="a `vad-eval train` output (short for --method-arg checkpoint=DIR)")
    r.add_argument("--prompt-file", default=None,
                   help="a prompt template file for the method (short for --method-arg "
                   "prompt_file=FILE; e.g. Vad-R1's official P2C-CoT prompt)")
    r.add_argument("--engine-arg", action="append", metavar="KEY=VALUE")
    r.add_argument("--executor", default=None, metavar="{local,ray}",
                   help="who predicts: local (default, this process) or ray (--workers actors, "
                   "one engine each)")
    r.add_argument("--workers", type=int, default=None,
                   help="ray: number of workers (actors), one engine each (default 1)")
    r.add_argument("--worker-cpus", type=float, default=None,
                   help="ray: CPUs each worker asks Ray for (default 1)")
    r.add_argument("--ray-address", default=None,
                   help="ray: address of a running cluster to join (default: start Ray locally)")
    r.add_argument("--no-cache", dest="cache", action="store_false", default=None,
                   help="do not use cached engine responses")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print metrics.json instead of a table")

    sub.add_parser("list", help="list tasks, methods and engines")

    d = sub.add_parser("describe", help="dataset statistics of a task's split")
    _add_task_args(d)
    d.add_argument("--json", action="store_true")

    s = sub.add_parser("score", help="evaluate score files produced by another codebase")
    _add_task_args(s)
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores", help="score file (frame tasks)")
    src.add_argument("--predictions", dest="scores",
                     help="answers file or folder (language-side tasks)")
    s.add_argument("--format", required=True, dest="fmt",
                   choices=["segments-json", "frames-json", "frames-npy", "vru-responses",
                            "vad-r1-results", "responses-jsonl"])
    s.add_argument("--field", type=int, default=None,
                   help="segments-json: index into each segment's list of values")
    s.add_argument("--transform", default=None, choices=["sigmoid"])
    s.add_argument("--round", type=int, default=None, dest="round_digits",
                   help="round scores to D decimals after the transform")
    s.add_argument("--json", action="store_true")
    lb = sub.add_parser("leaderboard", help="open the Streamlit leaderboard on a runs directory")
    lb.add_argument("--runs", default="runs", help="runs directory (default ./runs)")
    lb.add_argument("--port", type=int, default=8501)
    lb.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")

    t = sub.add_parser("train", help="train a method (writes a checkpoint directory)")
    t.add_argument("--method", required=True)
    t.add_argument("--task", required=True, help="task whose training videos are used")
    t.add_argument("--out", required=True, help="checkpoint directory to write")
    t.add_argument("--model", default=None, help="backbone (default: the method's)")
    t.add_argument("--steps", type=int, default=None, help="optimisation steps")
    t.add_argument("--config", default=None, help="YAML file or preset name of the method")
    t.add_argument("--stage", default=None, help="stage of a multi-stage routine")
    t.add_argument("--data-root", default=None)
    t.add_argument("--split", default=None, choices=["test", "sample"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--dtype", default="auto")
    t.add_argument("--task-arg", action="append", metavar="KEY=VALUE")
    t.add_argument("--method-arg", action="append", metavar="KEY=VALUE",
                   help="training setting overriding the configuration's")
    t.add_argument("--quiet", action="store_true", help="no per-step lines")
    sm = sub.add_parser("submit", help="validate a result file and add it to the leaderboard")
    sm.add_argument("file", nargs="?", help="submission JSON (see --schema)")
    sm.add_argument("--runs", default="runs", help="runs directory whose index receives it")
    sm.add_argument("--schema", action="store_true", help="print the JSON schema and exit")
    return p


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Become ``streamlit run leaderboard/app.py`` on ``--runs`` (the process is replaced, so
    a signal to it reaches the server directly)."""
    import leaderboard

    app = Path(leaderboard.__file__).with_name("app.py")
    runs = Path(args.runs).resolve()
    if not runs.is_dir():
        raise FileNotFoundError(f"{runs}: runs directory not found (run an evaluation first, "
                                "or pass --runs)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.address", args.host, "--server.port", str(args.port),
           "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
           "--client.toolbarMode", "viewer"]
    print(f"leaderboard on http://{args.host}:{args.port} (runs: {runs}); Ctrl-C stops it",
          flush=True)
    os.execve(sys.executable, cmd, os.environ | {"VAD_EVAL_RUNS": str(runs)})
    return 0  # not reached


def cmd_submit(args: argparse.Namespace) -> int:
    from leaderboard.submission import schema_text, submit

    if args.schema:
        print(schema_text(), end="")
        return 0
    if not args.file:
        raise ConfigError("submit: give a submission file (or --schema)")
    sid, added = submit(args.file, args.runs)
    state = "added to" if added else "already in"
    print(f"submission {sid} {state} the index of {Path(args.runs).resolve()}")
    return 0


def _first_line(obj: Any) -> str:
    doc = getattr(obj, "description", "") or (getattr(obj, "__doc__", "") or "")
    return doc.strip().splitlines()[0] if doc.strip() else ""


def cmd_list() -> int:
    for title, reg in (("tasks", TASKS), ("methods", METHODS), ("engines", ENGINES)):
        print(f"{title}:")
        for name in reg.names():
            try:
                desc = _first_line(reg.get(name))
            except Exception as exc:  # a broken third-party entry point must not hide the rest
                desc = f"(cannot load: {exc})"
            print(f"  {name:<16} {desc}")
    return 0


def _load_task(args: argparse.Namespace) -> tuple[Any, list[Any], str]:
    from harness.runner import RunConfig, build_task

    cfg = RunConfig(method="-", task=args.task, data_root=args.data_root, split=args.split,
                    task_args=_task_args(args))
    task = build_task(cfg)
    split = cfg.resolved_split()
    samples = task.load(Path(args.data_root) if args.data_root else None, split)
    return task, samples, split


def cmd_describe(args: argparse.Namespace) -> int:
    task, samples, split = _load_task(args)
    info = task.describe(samples) | {"split": split}
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from tasks.score_import import score_external

    task, samples, split = _load_task(args)
    result = score_external(task, samples, Path(args.scores), args.fmt, field=args.field,
                            transform=args.transform, round_digits=args.round_digits)
    result = {"task": args.task, "split": split, "scores": str(args.scores), **result}
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        from harness.report import format_result

        print(format_result(result))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report import format_result
    from harness.runner import run

    file_values = load_yaml(args.config) if args.config else {}
    cli = {
        "method": args.method, "task": args.task, "model": args.model,
        "data_root": args.data_root, "split": args.split, "engine": args.engine,
        "batch_size": args.batch_size, "out": args.out, "run_name": args.run_name,
        "limit": args.limit, "resume": args.resume, "seed": args.seed, "strict": args.strict,
        "device": args.device, "dtype": args.dtype, "max_pixels": args.max_pixels,
        "task_args": _task_args(args) or None,
        "method_args": ({**parse_kv(args.method_arg, "--method-arg"),
                         **({"checkpoint": args.checkpoint} if args.checkpoint else {}),
                         **({"prompt_file": args.prompt_file} if args.prompt_file else {})}
                        or None),
        "engine_args": parse_kv(args.engine_arg, "--engine-arg") or None,
        "executor": args.executor, "workers": args.workers, "worker_cpus": args.worker_cpus,
        "ray_address": args.ray_address, "cache": args.cache,
    }
    cfg = build_config(file_values, cli)
    res = run(cfg, progress=not args.no_progress)
    if args.json:
        print(json.dumps(res.result, indent=2, sort_keys=True))
    else:
        print(format_result(res.result))
        for note in res.notices:
            print(note)
        print(f"run directory: {res.run_dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from harness.training import TrainJob, train

    def log(row: dict[str, Any]) -> None:
        keys = ("loss", "reward", "accuracy", "aei", "success", "pairs", "kl", "grad_norm")
        parts = [f"{k} {row[k]:.4g}" for k in keys if isinstance(row.get(k), int | float)]
        if isinstance(row.get("note"), str):  # a method's own one-line summary of the step
            parts.append(row["note"])
        print(f"step {row.get('step')}: " + ", ".join(parts) + f" ({row['elapsed_s']:.0f} s)",
              flush=True)

    job = TrainJob(method=args.method, task=args.task, out=Path(args.out), model=args.model,
                   data_root=args.data_root, split=args.split, steps=args.steps,
                   config=args.config, stage=args.stage, seed=args.seed, device=args.device,
                   dtype=args.dtype, task_args=parse_kv(args.task_arg, "--task-arg"),
                   method_args=parse_kv(args.method_arg, "--method-arg"),
                   log=None if args.quiet else log)
    res = train(job)
    print(json.dumps(res.summary, indent=2, sort_keys=True))
    print(f"checkpoint: {res.checkpoint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS + ("-h", "--help"):
        argv = ["run", *argv]
    args = _parser().parse_args(argv)
    from harness.engines.base import EngineError
    from harness.runner import RunError
    from harness.store import RunStoreError
    from harness.training import CheckpointError, TrainingError
    from leaderboard.submission import SubmissionError
    from tasks.base import TaskDataError
    from tasks.records import ScoreFormatError

    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "describe":
            return cmd_describe(args)
        if args.command == "score":
            return cmd_score(args)
        if args.command == "leaderboard":
            return cmd_leaderboard(args)
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "train":
            return cmd_train(args)
        return cmd_run(args)
    except (UnknownNameError, ConfigError, TaskDataError, RunStoreError, RunError,
            ScoreFormatError, EngineError, FileNotFoundError, SubmissionError, TrainingError,
            CheckpointError) as exc:
        print(f"vad-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vad-eval: interrupted; finished videos are saved, rerun with --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
