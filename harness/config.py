"""Run configuration: one dataclass, filled from a YAML file and then the command line.

Precedence: built-in defaults < ``--config FILE.yaml`` < command-line flags. The YAML file
uses the same names as the flags (``method``, ``task``, ``model``, ``data_root``, ...) plus
three mappings passed through to the components: ``task_args``, ``method_args`` and
``engine_args``. An unknown key is an error naming the file and the key.

How a run is executed (``executor``, ``workers``, ``worker_cpus``, ``ray_address``) and
whether engine responses are cached (``cache``) do not define the result: they are left out
of :meth:`RunConfig.identity`, so a run may be resumed with other values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """YAML 1.1's safe loader, except that ``1e-4`` and ``3E5`` are floats (YAML 1.2), as anyone
    typing ``--method-arg learning_rate=1e-4`` means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_scalar_or_doc(text: str) -> Any:
    """``yaml.safe_load`` with :class:`_Loader` (scientific notation as floats)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the file and the field."""


@dataclass
class RunConfig:
    """Everything that defines one evaluation run.

    ``split`` defaults to ``"sample"`` (the bundled sample world) when no ``data_root`` is given
    and to ``"test"`` otherwise.
    """

    method: str = ""
    task: str = ""
    model: str | None = None
    data_root: str | None = None
    split: str | None = None
    engine: str = "hf"
    batch_size: int = 8
    out: str = "runs"
    run_name: str | None = None
    limit: int | None = None
    resume: bool = False
    seed: int = 0
    strict: bool = False
    device: str = "auto"
    dtype: str = "auto"
    max_pixels: int | None = None
    task_args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, Any] = field(default_factory=dict)
    engine_args: dict[str, Any] = field(default_factory=dict)
    # how the run is executed: not part of the result (see harness/executors)
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    worker_cpus: float = 1.0
    cache: bool = True

    def resolved_split(self) -> str:
        return self.split or ("test" if self.data_root else "sample")

    def identity(self) -> dict[str, Any]:
        """The fields that define the result (not where it is written or how fast)."""
        keep = ("method", "task", "model", "data_root", "engine", "seed", "limit", "device",
                "dtype", "max_pixels", "task_args", "method_args", "engine_args")
        d = {k: getattr(self, k) for k in keep}
        d["split"] = self.resolved_split()
        return d

    def digest(self) -> str:
        """Short hash of :meth:`identity` (names default run directories)."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def execution(self) -> dict[str, Any]:
        """How the run is executed (recorded, never compared on resume)."""
        return {"executor": self.executor, "workers": self.workers,
                "worker_cpus": self.worker_cpus, "ray_address": self.ray_address,
                "cache": self.cache}


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def read_mapping(path: Path | str) -> dict[str, Any]:
    """A YAML file's top-level mapping (``{}`` for an empty file); keys are not validated."""
    path = Path(path)
    try:
        data = load_scalar_or_doc(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML config file into a dict of RunConfig fields (validated names)."""
    data = read_mapping(path)
    for key, value in data.items():
        if key not in FIELDS:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: {sorted(FIELDS)}")
        if key.endswith("_args") and not isinstance(value, dict):
            raise ConfigError(f"{path}: {key!r} must be a mapping")
    return data


def parse_kv(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values parsed as YAML scalars (``3`` -> int, ``true`` -> bool)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = load_scalar_or_doc(value) if value else ""
    return out


_TYPES: dict[str, tuple[type, ...]] = {
    "method": (str,), "task": (str,), "model": (str, type(None)), "data_root": (str, type(None)),
    "split": (str, type(None)), "engine": (str,), "batch_size": (int,), "out": (str,),
    "run_name": (str, type(None)), "limit": (int, type(None)), "resume": (bool,),
    "seed": (int,), "strict": (bool,), "device": (str,), "dtype": (str,),
    "max_pixels": (int, type(None)), "task_args": (dict,), "method_args": (dict,),
    "engine_args": (dict,), "executor": (str,), "workers": (int,),
    "ray_address": (str, type(None)), "worker_cpus": (int, float), "cache": (bool,),
}

EXECUTORS = ("local", "ray")


def _check_type(key: str, value: Any) -> None:
    want = _TYPES[key]
    bad_bool = isinstance(value, bool) and bool not in want  # bool is an int subclass
    if bad_bool or not isinstance(value, want):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in want)
        raise ConfigError(f"config field {key!r} must be {names}, got {value!r}")


def build_config(file_values: dict[str, Any], cli_values: dict[str, Any]) -> RunConfig:
    """Merge: defaults < file < command line (``None`` on the command line means 'not given')."""
    merged: dict[str, Any] = {}
    merged.update(file_values)
    for key, value in cli_values.items():
        if value is None:
            continue
        if key.endswith("_args"):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    for key, value in merged.items():
        _check_type(key, value)
    cfg = RunConfig(**merged)
    cfg.worker_cpus = float(cfg.worker_cpus)
    if not cfg.method:
        raise ConfigError("no method given (--method or 'method:' in the config file)")
    if not cfg.task:
        raise ConfigError("no task given (--task or 'task:' in the config file)")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"limit must be >= 1, got {cfg.limit}")
    check_execution(cfg)
    return cfg


def check_execution(cfg: RunConfig) -> None:
    """Validate the execution fields; messages name the flag and the config key."""
    if cfg.executor not in EXECUTORS:
        raise ConfigError(f"--executor / executor: unknown executor {cfg.executor!r}; "
                          f"choose one of {', '.join(EXECUTORS)}")
    if cfg.workers < 1:
        raise ConfigError(f"--workers / workers must be >= 1, got {cfg.workers}")
    if not (cfg.worker_cpus > 0 and math.isfinite(cfg.worker_cpus)):
        raise ConfigError(f"--worker-cpus / worker_cpus must be > 0, got {cfg.worker_cpus}")
    if cfg.executor == "local" and cfg.workers != 1:
        raise ConfigError(f"--workers {cfg.workers} needs --executor ray (the local executor "
                          f"runs one worker in this process)")
    if cfg.executor == "local" and cfg.ray_address:
        raise ConfigError("--ray-address / ray_address needs --executor ray")
