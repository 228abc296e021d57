"""Executors: ``--executor ray --workers 2`` gives the local executor's records and metrics,
resumes runs of the other executor, records unreadable videos, survives a dying worker, and
rejects bad settings. Every test runs under a hard ``SIGALRM`` time limit.

One local Ray instance (2 CPUs, no dashboard) is shared by the module; workers ask for 1 CPU
each so Ray never waits for resources on a 2-CPU machine. One test runs the CLI in a
subprocess so the executor starts (and shuts down) a Ray instance of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.sample_world import ensure_sample
from methods.base import RunContext
from methods.baselines import FrameDiff, FrameDiffSettings
from tasks.base import VideoSample

TEST_LIMIT_S = 240  # per test; a hung worker fails the test instead of the CI job
RAY_START_LIMIT_S = 120
CLI = [sys.executable, "-m", "harness.cli"]
RAY2 = ("--executor", "ray", "--workers", "2", "--worker-cpus", "1")


@contextlib.contextmanager
def _alarm(seconds: int, what: str) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} exceeded its {seconds} s limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    with _alarm(TEST_LIMIT_S, request.node.name):
        yield


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is not installed (the ray executor tests need it in CI)")
        pytest.skip("ray is not installed")
    return ray


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = _import_ray()
    t0 = time.perf_counter()
    with _alarm(RAY_START_LIMIT_S, "ray.init"):
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ucf_sample() -> Path:
    return ensure_sample("ucf_crime")


def _run(*args: str) -> int:
    return main(list(args))


def _metrics_bytes(run_dir: Path) -> bytes:
    return (run_dir / "metrics.json").read_bytes()


def _lines_by_id(run_dir: Path, name: str = "predictions.jsonl") -> dict[str, str]:
    lines = (run_dir / name).read_text().splitlines()
    return {json.loads(x)["video_id"]: x for x in lines}


def _config(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())  # type: ignore[no-any-return]


def _truncate(run_dir: Path, keep: int) -> None:
    """What a kill after ``keep`` videos leaves behind: those records, no metrics."""
    preds = run_dir / "predictions.jsonl"
    preds.write_text("".join(x + "\n" for x in preds.read_text().splitlines()[:keep]))
    (run_dir / "metrics.json").unlink()


@pytest.fixture(scope="module")
def frozen_runs(ray_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frozen baseline on the tiny model (hf engine), 4 videos, local and ray x 2."""
    out = tmp_path_factory.mktemp("frozen_runs")
    # --no-cache: both executors really predict (a re-run would reuse the stored records)
    base = ("--method", "frozen", "--task", "ucf_crime", "--split", "sample", "--limit", "4",
            "--out", str(out), "--no-progress", "--batch-size", "4", "--no-cache")
    with _alarm(TEST_LIMIT_S, "frozen_runs"):
        for name, extra in (("local", ()), ("ray", RAY2)):
            t0 = time.perf_counter()
            assert _run(*base, "--run-name", name, *extra) == 0
            print(f"frozen {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out


def test_frozen_ray_equals_local(frozen_runs: Path) -> None:
    local, ray = frozen_runs / "local", frozen_runs / "ray"
    assert _metrics_bytes(ray) == _metrics_bytes(local)
    assert _lines_by_id(ray) == _lines_by_id(local)
    assert len(_lines_by_id(ray)) == 4
    c_local, c_ray = _config(local), _config(ray)
    assert c_local["execution"]["executor"] == "local"
    assert c_ray["execution"]["executor"] == "ray" and c_ray["execution"]["workers"] == 2
    assert len(c_ray["execution"]["ray"]["workers"]) == 2
    assert c_ray["execution"]["cache"] is False
    for key in ("method_settings", "engine_identity", "protocol", "dataset"):
        assert c_ray[key] == c_local[key], key
    assert c_ray["engine_info"] == c_local["engine_info"]


def test_frame_diff_ray_equals_local(ray_local: Any, tmp_path: Path) -> None:
    base = ("--method", "frame_diff", "--task", "ucf_crime", "--limit", "4", "--out",
            str(tmp_path), "--no-progress")
    assert _run(*base, "--run-name", "local") == 0
    assert _run(*base, "--run-name", "ray", *RAY2) == 0
    assert _metrics_bytes(tmp_path / "ray") == _metrics_bytes(tmp_path / "local")
    assert _lines_by_id(tmp_path / "ray") == _lines_by_id(tmp_path / "local")
    assert _config(tmp_path / "ray")["engine_info"] is None


def test_local_run_resumed_with_ray(frozen_runs: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "local"
    shutil.copytree(frozen_runs / "local", run_dir)
    _truncate(run_dir, 2)
    assert _run("--method", "frozen", "--task", "ucf_crime", "--split", "sample", "--limit", "4",
                "--out", str(tmp_path), "--run-name", "local", "--no-progress",
                "--batch-size", "2", "--resume", "--no-cache", *RAY2) == 0
    assert _metrics_bytes(run_dir) == _metrics_bytes(frozen_runs / "local")
    assert _lines_by_id(run_dir) == _lines_by_id(frozen_runs / "local")
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["videos_this_session"] == 2 and info["execution"]["executor"] == "ray"
    assert _config(run_dir)["execution"]["executor"] == "local"  # the first session's


def test_ray_run_resumed_locally_starts_its_own_ray(ray_local: Any, tmp_path: Path) -> None:
    """The CLI in a subprocess: the executor starts a local Ray (2 x 0.5 CPU) and stops it."""
    base = ["--method", "frame_diff", "--task", "ucf_crime", "--limit", "4", "--out",
            str(tmp_path), "--no-progress"]
    assert _run(*base, "--run-name", "whole") == 0
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, *base, "--run-name", "r", "--executor", "ray", "--workers", "2",
                           "--worker-cpus", "0.5"], capture_output=True, text=True,
                          timeout=TEST_LIMIT_S - 30, check=False)
    print(f"ray subprocess run: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    assert proc.returncode == 0, proc.stderr
    assert "ray: started a local Ray instance with 1 CPU(s)" in proc.stderr
    assert _config(tmp_path / "r")["execution"]["ray"]["started_here"] is True
    _truncate(tmp_path / "r", 2)
    assert _run(*base, "--run-name", "r", "--resume") == 0
    assert _metrics_bytes(tmp_path / "r") == _metrics_bytes(tmp_path / "whole")
    assert _lines_by_id(tmp_path / "r") == _lines_by_id(tmp_path / "whole")


def test_unreadable_video_is_an_error_record_with_ray(ray_local: Any, ucf_sample: Path,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "ucf"
    shutil.copytree(ucf_sample, data)
    tests = [data / x for x in (data / "Anomaly_Test.txt").read_text().split()]
    garbage, empty = tests[0], tests[-1]
    garbage.write_bytes(b"this is not an mp4 file" * 10)
    empty.write_bytes(b"")
    args = ("--method", "frame_diff", "--task", "ucf_crime", "--data-root", str(data),
            "--out", str(tmp_path / "runs"), "--no-progress")
    assert _run(*args, "--run-name", "local") == 0
    assert _run(*args, "--run-name", "ray", *RAY2) == 0
    runs = tmp_path / "runs"
    m = json.loads(_metrics_bytes(runs / "ray"))
    assert m["errors"]["n_videos"] == 2 and m["metrics"]["missing_videos"] == 2
    assert _metrics_bytes(runs / "ray") == _metrics_bytes(runs / "local")
    errors = [json.loads(x) for x in (runs / "ray" / "errors.jsonl").read_text().splitlines()]
    assert {Path(e["path"]).name for e in errors} == {garbage.name, empty.name}
    local_errors = [json.loads(x) for x in
                    (runs / "local" / "errors.jsonl").read_text().splitlines()]
    strip = [{k: v for k, v in e.items() if k != "time"} for e in errors]
    assert sorted(strip, key=str) == sorted(
        ({k: v for k, v in e.items() if k != "time"} for e in local_errors), key=str)
    assert _lines_by_id(runs / "ray") == _lines_by_id(runs / "local")
    capsys.readouterr()
    assert _run(*args, "--run-name", "strict", "--strict", *RAY2) == 2
    assert "--strict" in capsys.readouterr().err


@dataclass
class CrashSettings(FrameDiffSettings):
    crash_file: str = ""


class CrashingFrameDiff(FrameDiff):
    """frame_diff whose process dies on the video named in ``crash_file`` (if it exists)."""

    name = "crashing_frame_diff"
    Settings = CrashSettings

    def predict(self, sample: VideoSample, ctx: RunContext) -> dict[str, Any]:
        flag = Path(self.settings.crash_file)
        if flag.is_file() and flag.read_text().strip() == sample.video_id:
            os._exit(3)
        return super().predict(sample, ctx)


def test_dying_worker_is_reported_and_run_resumes(ray_local: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    base = ("--task", "ucf_crime", "--limit", "4", "--out", str(tmp_path), "--no-progress")
    assert _run("--method", "frame_diff", *base, "--run-name", "fd") == 0
    victim = next(iter(_lines_by_id(tmp_path / "fd")))
    flag = tmp_path / "crash_on.txt"
    flag.write_text(victim)
    crash = ("--method", f"{__name__}:CrashingFrameDiff", "--method-arg", f"crash_file={flag}",
             *base, "--run-name", "crash")
    capsys.readouterr()
    assert _run(*crash, *RAY2) == 2
    err = capsys.readouterr().err
    assert "ray worker(s) died" in err and victim in err and "--resume" in err
    done = _lines_by_id(tmp_path / "crash")
    assert victim not in done and len(done) == 3  # the other worker finished the rest
    assert not (tmp_path / "crash" / "metrics.json").exists()
    flag.unlink()
    assert _run(*crash, *RAY2, "--resume") == 0
    m_crash = json.loads(_metrics_bytes(tmp_path / "crash"))
    m_fd = json.loads(_metrics_bytes(tmp_path / "fd"))
    assert m_crash["metrics"] == m_fd["metrics"]
    assert _lines_by_id(tmp_path / "crash") == _lines_by_id(tmp_path / "fd")


@pytest.mark.parametrize(("argv", "needle"), [
    (("--executor", "dask"), "--executor"),
    (("--executor", "dask"), "local, ray"),
    (("--executor", "ray", "--workers", "0"), "--workers"),
    (("--workers", "-1"), "--workers"),
    (("--workers", "2"), "needs --executor ray"),
    (("--executor", "ray", "--worker-cpus", "0"), "--worker-cpus"),
    (("--ray-address", "auto"), "--ray-address"),
])
def test_bad_execution_values_name_the_flag(argv: tuple[str, ...], needle: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    assert _run("--method", "frame_diff", "--task", "ucf_crime", "--out", str(tmp_path),
                *argv) == 2
    assert needle in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # rejected before anything was written


def test_execution_keys_from_yaml(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from harness.config import build_config, load_yaml

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("method: frame_diff\ntask: ucf_crime\nexecutor: ray\nworkers: 3\n"
                        "worker_cpus: 2\nray_address: auto\ncache: false\n")
    cfg = build_config(load_yaml(cfg_file), {"workers": 2})
    assert (cfg.executor, cfg.workers, cfg.worker_cpus, cfg.ray_address, cfg.cache) == (
        "ray", 2, 2.0, "auto", False)
    plain = build_config({"method": "frame_diff", "task": "ucf_crime"}, {})
    assert cfg.digest() == plain.digest()  # execution does not name or define the run
    cfg_file.write_text("method: frame_diff\ntask: ucf_crime\nworkers: two\n")
    assert _run("--config", str(cfg_file)) == 2
    assert "'workers' must be int" in capsys.readouterr().err
    cfg_file.write_text("method: frame_diff\ntask: ucf_crime\ncache: 'no'\n")
    assert _run("--config", str(cfg_file)) == 2
    assert "'cache' must be bool" in capsys.readouterr().err


def test_no_cache_flag_is_recorded(tmp_path: Path) -> None:
    assert _run("--method", "constant", "--task", "ucf_crime", "--limit", "2", "--out",
                str(tmp_path), "--run-name", "nc", "--no-progress", "--no-cache") == 0
    cfg = _config(tmp_path / "nc")
    assert cfg["execution"] == {"executor": "local", "workers": 1, "worker_cpus": 1.0,
                                "ray_address": None, "cache": False}
    assert cfg["resolved"]["cache"] is False
