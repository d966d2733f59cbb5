"""Run a function right after a given module has been imported (a post-import hook), or now if it already was.

:mod:`hf_maskedav.registration` uses it to register with transformers' Auto mappings and pipeline registry when
transformers loads them, not at ``import hf_maskedav``: importing ``transformers.models.auto`` alone scans the 400+
model folders of transformers (about half a second), and ``AutoVideoProcessor``/``AutoProcessor``/
``transformers.pipelines`` import torchvision and the pipeline stack (seconds). Whoever uses an Auto class or
``pipeline`` imports those modules anyway, and the hook registers the families before the first call returns.

The hook is a finder placed first on ``sys.meta_path`` that answers only for the watched names and, while it is
installed, for this package's own modules: it asks the other finders for the module's spec and wraps the loader, so
that it knows when each of these modules starts and finishes executing. A watched module's callbacks run once the
import chain it belongs to has completed: right after the module's code when it was imported on its own, or, when one
of our modules or another watched module was still executing (``hf_maskedav.pipelines.audio_video_pipeline`` imports
``transformers.pipelines``, whose callback imports ``audio_video_pipeline``), as soon as the outermost of them has
finished. So a callback never meets one of our modules half-initialised, whatever the import order. Once every
watched module has been imported and every callback has run, the finder removes itself.
"""

from __future__ import annotations

import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from importlib.abc import Loader, MetaPathFinder

_lock = threading.RLock()
_TRACKED_PREFIXES = ("hf_maskedav.",)  # our modules: a callback must not run while one of them is executing


class _Chain(threading.local):
    """Per thread: how many tracked modules are executing, and the callbacks waiting for them to finish."""

    def __init__(self):
        self.depth = 0
        self.waiting: list[tuple[Callable, object]] = []


_chain = _Chain()


class _TrackedLoader(Loader):
    """Wraps a loader: executes the module with it, counted in the thread's import chain; then schedules the
    callbacks (``callbacks`` is empty for a tracked module that nobody watches)."""

    def __init__(self, loader, name: str, callbacks: list[Callable]):
        self._loader, self._name, self._callbacks = loader, name, callbacks

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # the module keeps its real loader (inspect.getsource, importlib.resources, reload)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _chain.depth += 1
        try:
            self._loader.exec_module(module)
        except BaseException:
            if self._callbacks:
                _finder.watch_again(self._name, self._callbacks)  # a later import that succeeds still runs them
            raise
        else:
            _chain.waiting.extend((callback, module) for callback in self._callbacks)
        finally:
            _chain.depth -= 1
            if _chain.depth == 0:
                _run_waiting()

    def __getattr__(self, attribute):
        return getattr(self._loader, attribute)


class _PostImportFinder(MetaPathFinder):
    def __init__(self):
        self.callbacks: dict[str, list[Callable]] = {}

    def watch_again(self, name: str, callbacks: list[Callable]) -> None:
        with _lock:
            self.callbacks.setdefault(name, [])[:0] = callbacks
            _install()

    def find_spec(self, fullname, path=None, target=None):
        tracked = fullname.startswith(_TRACKED_PREFIXES)
        if fullname not in self.callbacks and not tracked:
            return None
        with _lock:
            callbacks = self.callbacks.pop(fullname, None) or []
        if not callbacks and not tracked:
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            # not found, a namespace package or a legacy loader: nothing to wrap; try again on the next import
            if callbacks:
                self.watch_again(fullname, callbacks)
            return spec
        spec.loader = _TrackedLoader(spec.loader, fullname, callbacks)
        return spec


_finder = _PostImportFinder()


def _install() -> None:
    if _finder.callbacks and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _uninstall_when_done() -> None:
    """Leave ``sys.meta_path`` once no module is watched and this thread runs no tracked import."""
    with _lock:
        if not _finder.callbacks and _chain.depth == 0:
            try:
                sys.meta_path.remove(_finder)
            except ValueError:
                pass


def _run_waiting() -> None:
    """Run the callbacks whose import chain has completed (in the order their modules finished loading)."""
    while _chain.waiting:
        callback, module = _chain.waiting.pop(0)
        _run(callback, module)
    _uninstall_when_done()


def _run(callback: Callable, module) -> None:
    try:
        callback(module)
    except Exception as error:  # never break the user's import of transformers
        warnings.warn(
            f"hf_maskedav could not register with {module.__name__}: {error!r}\n{traceback.format_exc()}",
            RuntimeWarning,
            stacklevel=2,
        )


def when_imported(name: str, callback: Callable) -> None:
    """Call ``callback(module)`` once module ``name`` is imported: now if it is (after the import chain running in
    this thread, if any), else once its import chain has completed."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _finder.callbacks.setdefault(name, []).append(callback)
            _install()
            return
    if _chain.depth:
        _chain.waiting.append((callback, module))
    else:
        _run(callback, module)


def pending() -> list[str]:
    """Names of the watched modules not imported yet."""
    with _lock:
        return sorted(_finder.callbacks)
