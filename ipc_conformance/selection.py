"""Which backends a run checks, and what went wrong loading the ones asked for.

Sources, in order: ``--ipc-backend MODULE:ATTR`` (repeatable) and the
comma-separated ``IPC_BACKENDS`` variable; when neither is given, the reference
backends of :mod:`ipc_impls` plus every backend installed under the entry-point
group ``ipc_conformance.backends``.

``MODULE:ATTR`` may name a backend instance, a backend class (instantiated with
no arguments), a zero-argument factory, a gallery ``Exhibit``, or a list/tuple
of any of these.
A spec that cannot be loaded becomes a :class:`LoadProblem` instead of stopping
the run: the other backends are still checked, and the problem is reported as
a failing ``test_backend_is_valid`` item and in the matrix.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Iterable, List, Sequence, Tuple, Union

from ipc_specs import validate_backend

ENV_VAR = "IPC_BACKENDS"
ENTRY_POINT_GROUP = "ipc_conformance.backends"


class SpecSyntaxError(ValueError):
    """A ``--ipc-backend`` value that is not of the form ``MODULE:ATTR``."""


@dataclass(frozen=True)
class Loaded:
    backend: Any
    source: str  # the spec that produced it ("reference" for the defaults)


@dataclass(frozen=True)
class LoadProblem:
    source: str
    message: str

    @property
    def name(self) -> str:
        return self.source


def parse_spec(spec: str) -> Tuple[str, str]:
    module, sep, attr = spec.strip().rpartition(":")
    if not sep or not module or not attr or " " in spec.strip() or not attr.isidentifier():
        raise SpecSyntaxError(
            f"backend {spec!r}: expected MODULE:ATTR or PATH.py:ATTR, e.g. 'mylib.ipc:BACKEND', "
            "'ipc_impls.streams:PipeBackend' or '../adapters/mine.py:Backend'"
        )
    return module, attr


def requested_specs(options: Sequence[str], environ: Any = os.environ) -> List[str]:
    """The specs asked for; each option value may hold several, comma-separated, as IPC_BACKENDS does."""
    specs = [s.strip() for option in options for s in option.split(",") if s.strip()]
    specs += [s.strip() for s in environ.get(ENV_VAR, "").split(",") if s.strip()]
    for spec in specs:
        parse_spec(spec)  # fail fast on syntax: that is a usage error, not a verdict
    return specs


def select(options: Sequence[str], environ: Any = os.environ) -> List[Union[Loaded, LoadProblem]]:
    specs = requested_specs(options, environ)
    if specs:
        return [item for spec in specs for item in load_spec(spec)]
    from ipc_impls import reference_backends

    chosen: List[Union[Loaded, LoadProblem]] = [Loaded(b, "reference") for b in reference_backends()]
    return chosen + list(_entry_point_backends())


def load_spec(spec: str) -> List[Union[Loaded, LoadProblem]]:
    module_name, attr = parse_spec(spec)
    try:
        module = _import(module_name)
    except BaseException as exc:  # an import may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return [LoadProblem(spec, f"importing module {module_name!r} failed: {detail}")]
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
        return [LoadProblem(spec, f"module {module_name!r} has no attribute {attr!r}; it has: {', '.join(public)}")]
    return resolve(getattr(module, attr), spec)


#: Top-level modules found only through the current directory, and that directory.
_FROM_CWD: dict = {}


def from_cwd(spec: str) -> str:
    """The directory a reproduce line must put on PYTHONPATH for ``spec`` ("" if none)."""
    module = spec.rpartition(":")[0]
    return str(_FROM_CWD.get(module) or _FROM_CWD.get(module.split(".")[0], ""))


def _import(name: str) -> Any:
    """Import ``name``, also from the current directory, as ``python -m`` would.

    A console script's sys.path starts with its own bin directory, so a backend
    module sitting in the user's working directory would not be found; spawned
    workers inherit the amended sys.path, so they find it too.
    """
    if os.sep in name or name.endswith(".py"):
        return _import_path(name)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.insert(0, cwd)
        _FROM_CWD[name.split(".")[0]] = cwd
        return importlib.import_module(name)


def _import_path(path: str) -> Any:
    """Import a module given as a file path; its directory goes on sys.path (and so on
    spawned workers' sys.path), where they find it by name to unpickle the backend."""
    file = os.path.abspath(path if path.endswith(".py") else path + ".py")
    if not os.path.isfile(file):
        raise ModuleNotFoundError(f"no such file: {file}")
    directory, name = os.path.split(file[:-3])
    if not name.isidentifier():
        raise ImportError(f"{file}: a module file name must be a Python identifier")
    if directory not in sys.path:
        sys.path.insert(0, directory)
    _FROM_CWD[path.split(":")[0]] = directory
    return importlib.import_module(name)


def resolve(obj: Any, source: str) -> List[Union[Loaded, LoadProblem]]:
    """Turn what a spec names into backends, validating each against the backend API."""
    if isinstance(obj, (list, tuple)):
        return [item for element in obj for item in resolve(element, source)]
    if hasattr(obj, "breaks") and hasattr(obj, "backend"):  # a gallery Exhibit: check its backend
        return resolve(obj.backend, source)
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "setup")):
        try:
            obj = obj()
        except Exception as exc:
            return [LoadProblem(source, f"calling {getattr(obj, '__name__', obj)!r}() to make the backend raised "
                                        f"{type(exc).__name__}: {exc}")]
        return resolve(obj, source)
    problems = validate_backend(obj)
    if problems:
        label = getattr(obj, "name", None) or type(obj).__name__
        return [LoadProblem(source, f"{label!r} ({type(obj).__name__}) is not a valid backend: " + "; ".join(problems))]
    return [Loaded(obj, source)]


def _entry_point_backends() -> Iterable[Union[Loaded, LoadProblem]]:
    from importlib import metadata

    try:
        eps: Any = metadata.entry_points()
        group = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    except Exception:  # a broken distribution must not stop the run
        return
    for ep in group:
        source = f"entry point {ep.name} = {ep.value}"
        try:
            obj = ep.load()
        except Exception as exc:
            yield LoadProblem(source, f"loading failed: {type(exc).__name__}: {exc}")
            continue
        yield from resolve(obj, source)


def duplicate_names(items: Sequence[Union[Loaded, LoadProblem]]) -> List[str]:
    seen: dict = {}
    for item in items:
        if isinstance(item, Loaded):
            seen[item.backend.name] = seen.get(item.backend.name, 0) + 1
    return sorted(n for n, c in seen.items() if c > 1)

