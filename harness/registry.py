"""Name -> factory registries for tasks, methods and engines.

A registry maps a short name (``ucf_crime``, ``frozen``, ``hf``) to a class or factory.
Entries come from three places, looked up in this order:

1. built-ins registered with :meth:`Registry.register` when their module is imported;
2. third-party entry points in the group ``vad_eval.<kind>s`` (``vad_eval.tasks``,
   ``vad_eval.methods``, ``vad_eval.engines``);
3. a direct reference ``package.module:ClassName``.

An unknown name raises :class:`UnknownNameError` with close matches ("did you mean ...").
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that no registry entry, entry point or ``module:attr`` resolves."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A registry of one kind of object (``task``, ``method`` or ``engine``)."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.group = f"vad_eval.{kind}s"
        self._entries: dict[str, T] = {}
        self._builtin_modules = builtin_modules
        self._builtins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@TASKS.register("ucf_crime")`` on a class or factory."""

        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        self.register(name)(obj)

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for mod in self._builtin_modules:
                importlib.import_module(mod)

    def _entry_points(self) -> dict[str, object]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """All resolvable names: built-ins and entry points, sorted."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._entry_points()))

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

    def get(self, name: str) -> T:
        """Resolve ``name`` to the registered object.

        Raises:
            UnknownNameError: nothing matches; the message lists close matches.
        """
        self._load_builtins()
        if name in self._entries:
            return self._entries[name]
        eps = self._entry_points()
        if name in eps:
            obj = eps[name].load()  # type: ignore[attr-defined]
            self._entries[name] = obj
            return obj  # type: ignore[no-any-return]
        if ":" in name:
            mod_name, _, attr = name.partition(":")
            try:
                mod = _import_from_cwd(mod_name)
            except ImportError as exc:
                raise UnknownNameError(
                    f"{self.kind} {name!r}: cannot import module {mod_name!r} ({exc})"
                ) from exc
            try:
                return getattr(mod, attr)  # type: ignore[no-any-return]
            except AttributeError as exc:
                raise UnknownNameError(
                    f"{self.kind} {name!r}: module {mod_name!r} has no attribute {attr!r}"
                ) from exc
        known = self.names()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}. "
            f"Third-party {self.kind}s register through the entry-point group {self.group!r} "
            f"or are named directly as 'package.module:ClassName'."
        )


def _import_from_cwd(mod_name: str) -> object:
    """Import ``mod_name``; if that fails, retry with the current directory on ``sys.path``
    (the console script does not put it there, but ``--method my_vad:MyMethod`` should find
    ``./my_vad.py``)."""
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError:
        cwd = os.getcwd()
        if cwd in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(mod_name)


TASKS: Registry[object] = Registry("task", ("tasks.catalog",))
METHODS: Registry[object] = Registry("method", ("methods.catalog",))
ENGINES: Registry[object] = Registry("engine", ("harness.engines.catalog",))
