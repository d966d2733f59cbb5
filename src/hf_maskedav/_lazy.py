"""Lazy package attributes (PEP 562) and lazy class references for the transformers Auto mappings.

``import hf_maskedav`` must stay cheap: the model modules pull in ``transformers.modeling_utils`` (about a second and a
half) and the processors pull in torchaudio/torchvision. So the packages resolve their public names on first access
(:func:`lazy_exports`), and :mod:`hf_maskedav.registration` puts :class:`Deferred` references, not classes, into the
Auto mappings, through :func:`deferred_content`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import ItemsView, ValuesView


def lazy_exports(package: str, exports: dict[str, list[str]], eager: dict | None = None):
    """``(__getattr__, __dir__, __all__)`` for a package whose public names live in its submodules.

    ``exports`` maps a module, relative to ``package`` (``"modeling_audiomae"``, ``"models.audiomae"``), to the names
    it provides. A name is imported from its module on first access and then cached in the package's namespace, so
    ``from package import Name`` imports only the module that defines ``Name``. Other attribute names that are
    submodules of ``package`` (``hf_maskedav.video``) are imported on access, as they were when the package imported
    everything eagerly. ``eager`` lists names already defined in the package (``__version__``), for ``__all__``.
    """
    owner = {name: module for module, names in exports.items() for name in names}
    duplicates = sum(len(names) for names in exports.values()) - len(owner)
    if duplicates:
        raise ValueError(f"{package}: a name is exported by two modules")
    public = list(owner) + [name for name in (eager or {}) if name not in owner]

    def __getattr__(name: str):
        namespace = importlib.import_module(package).__dict__
        if name in owner:
            value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
            namespace[name] = value
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(public))

    return __getattr__, __dir__, public


def lazy_reexports(package: str, subpackages: list[str], eager: dict | None = None):
    """``(__getattr__, __dir__)`` for a package that re-exports the public names of its ``subpackages`` (each made
    with :func:`lazy_exports`, relative to ``package``), so that the names are written once, in the subpackage.

    Nothing is imported until a name is asked for: then the (small) subpackages are imported to find its owner, and
    the owner imports the one module that defines it. ``__all__`` is one of these names, computed on first access:
    every public name of the subpackages except constants (``MaskFeat``'s ``PRESETS`` stays in its package), plus
    ``eager`` (``__version__``).
    """
    owners: dict[str, str] = {}

    def _owners() -> dict[str, str]:
        if not owners:
            found = {}
            for sub in subpackages:
                for name in importlib.import_module(f"{package}.{sub}").__all__:
                    if name.isupper():
                        continue
                    if name in found:
                        raise ValueError(f"{package}: {name} is exported by {found[name]} and {sub}")
                    found[name] = sub
            owners.update(found)
        return owners

    def __getattr__(name: str):
        namespace = importlib.import_module(package).__dict__
        if name == "__all__":
            value = list(_owners()) + [n for n in (eager or {}) if n not in _owners()]
        elif not name.startswith("__") and name in _owners():
            value = getattr(importlib.import_module(f"{package}.{_owners()[name]}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(_owners()))

    return __getattr__, __dir__


class Deferred:
    """A class named by ``module:attribute``, imported only when something needs the class itself."""

    __slots__ = ("module", "name")

    def __init__(self, reference: str):
        self.module, _, self.name = reference.partition(":")

    def resolve(self):
        return getattr(importlib.import_module(self.module), self.name)

    def __eq__(self, other):
        return isinstance(other, Deferred) and (self.module, self.name) == (other.module, other.name)

    def __hash__(self):
        return hash((self.module, self.name))

    def __repr__(self):
        return f"Deferred({self.module}:{self.name})"


def _is_deferred(value) -> bool:
    if isinstance(value, Deferred):
        return True
    if isinstance(value, dict):
        return any(isinstance(v, Deferred) for v in value.values())
    if isinstance(value, tuple):
        return any(isinstance(v, Deferred) for v in value)
    return False


def _resolve(value):
    if isinstance(value, Deferred):
        return value.resolve()
    if isinstance(value, dict):
        return {key: _resolve(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_resolve(v) for v in value)
    return value


class DeferredContent(dict):
    """A ``dict`` whose values may be :class:`Deferred` (alone, in a tuple, or in a ``{backend: class}`` dict).

    Every read of a value (``[]``, ``get``, ``values()``, ``items()``, ``pop``, ``dict(...)``) imports it and stores the
    class in place of the reference; membership, ``keys()`` and ``len()`` import nothing. ``values()`` and ``items()``
    resolve one entry at a time as they are iterated, so a search that stops at its match imports only the entries
    before it. Used as ``_extra_content`` of transformers' ``_LazyAutoMapping`` (see :func:`deferred_content`).
    """

    def _value(self, key):
        value = dict.__getitem__(self, key)
        if _is_deferred(value):
            value = _resolve(value)
            dict.__setitem__(self, key, value)
        return value

    def __getitem__(self, key):
        return self._value(key)

    def get(self, key, default=None):
        return self._value(key) if dict.__contains__(self, key) else default

    def values(self):
        return ValuesView(self)

    def items(self):
        return ItemsView(self)

    def __iter__(self):
        # Defined in Python on purpose: ``dict(self)`` and ``{**self}`` then read values through ``__getitem__``
        # (resolved) instead of copying the raw storage (references).
        return dict.__iter__(self)

    def pop(self, key, *default):
        if dict.__contains__(self, key):
            value = self._value(key)
            dict.__delitem__(self, key)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self):
        if not dict.__len__(self):
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def add(self, key, value) -> None:
        """Store ``value`` (a class or a reference) under ``key`` unless ``key`` is there; resolves nothing."""
        if not dict.__contains__(self, key):
            dict.__setitem__(self, key, value)

    def setdefault(self, key, default=None):
        if dict.__contains__(self, key):
            return self._value(key)
        dict.__setitem__(self, key, default)
        return default

    def copy(self):
        return DeferredContent(dict.items(self))

    def __eq__(self, other):
        return dict(self.items()) == other

    __hash__ = None

    def __reduce__(self):
        return (dict, (dict(self.items()),))


def deferred_content(mapping) -> DeferredContent:
    """The ``_extra_content`` of a transformers ``_LazyAutoMapping``/``_LazyConfigMapping``, made a DeferredContent.

    transformers keeps the classes registered with ``AutoX.register`` in that dict and reads them with ``[]``,
    ``.get``, ``in`` and ``.values()``/``.items()``; the replacement keeps what was registered before.
    """
    content = mapping._extra_content
    if not isinstance(content, DeferredContent):
        content = DeferredContent(dict.items(content) if isinstance(content, dict) else content)
        mapping._extra_content = content
    return content
