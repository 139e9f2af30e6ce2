"""``twin run SCRIPT.py``: a script written for the vendor's client, run unchanged against the twin.

For the run only, the vendor's module names resolve to this project's clients and every connection
goes to the twin, whatever address the script names. Nothing is installed under a vendor's name: the
aliases live in ``sys.modules`` of this process until the script ends.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import runpy
import sys
import types
from collections.abc import Iterator

from clients.connection import redirect_connections

VENDOR_MODULES = {
    "autoscript_tem_microscope_client": "clients.tem",
    "autoscript_tem_microscope_client.enumerations": "clients.tem.enumerations",
    "autoscript_tem_microscope_client.structures": "clients.tem.structures",
    "autoscript_core": "clients.errors",
    "autoscript_core.common": "clients.errors",
    "autoscript_tem_toolkit": "clients.toolkit",
    "autoscript_tem_toolkit.vision": "clients.toolkit.vision",
    "autoscript_tem_toolkit.context_managers": "clients.toolkit.context_managers",
    "nanosurf": "clients.afm",  # classic scripting, 1.x: nanosurf.SPM()
    "nanosurf.com_proxy": "clients.afm",  # 2.x: from nanosurf.com_proxy import SPM
    "nanosurf.studio": "clients.afm.studio",  # 2.x: from nanosurf.studio import Studio
    "nanosurf.datatypes": "clients.afm.datatypes",  # the demos' helpers, for machines without the package
    "nanosurf.datatypes.sci_channel": "clients.afm.datatypes",
    "nanosurf.datatypes.sci_stream": "clients.afm.datatypes",
}
# Vendor packages whose own helpers stay when they are installed: only their connections are replaced
# (the modules listed, and the connection classes on the package itself).
KEPT_WHEN_INSTALLED = {"nanosurf": ("nanosurf.com_proxy", "nanosurf.studio")}
HELPERS_AT_TOP = {"nanosurf": ("SciChannel", "SciStream", "sci_val")}  # the 1.x packages' top-level helpers


def _alias(name: str, target: types.ModuleType) -> types.ModuleType:
    """A module called ``name`` that offers everything ``target`` does (and can hold submodules)."""
    module = types.ModuleType(name, target.__doc__)
    public = {k: v for k, v in vars(target).items() if not k.startswith("__") or k == "__all__"}
    module.__dict__.update(public)
    module.__path__ = []
    return module


def installed(package: str) -> types.ModuleType | None:
    """The vendor's own ``package`` when it is installed and imports here, else None."""
    if importlib.util.find_spec(package) is None:
        return None
    try:
        return importlib.import_module(package)
    except Exception:  # installed for another platform (its controller interface needs Windows): unusable
        return None


@contextlib.contextmanager
def vendor_modules() -> Iterator[None]:
    """Within this block the vendor's module names import this project's clients. An installed vendor
    package whose helpers are worth keeping stays itself: only its connection modules and classes are
    the twin's."""
    replaced: dict[str, str] = {}
    patched: list[tuple[types.ModuleType, str, object]] = []  # (module, attribute, what it was)
    for package, connections in KEPT_WHEN_INSTALLED.items():
        real = installed(package)
        if real is None:
            continue
        client = importlib.import_module(VENDOR_MODULES[package])
        for name in connections:
            replaced[name] = VENDOR_MODULES[name]
            patched.append((real, name.rsplit(".", 1)[1], getattr(real, name.rsplit(".", 1)[1], _MISSING)))
        for name in getattr(client, "__all__", ()):
            patched.append((real, name, getattr(real, name, _MISSING)))
            setattr(real, name, getattr(client, name))
    kept = {p for p in KEPT_WHEN_INSTALLED if installed(p) is not None}
    for name, target in VENDOR_MODULES.items():
        if name not in replaced and name.split(".")[0] not in kept:
            replaced[name] = target
    saved = {name: sys.modules.get(name) for name in replaced}
    for name, target in replaced.items():
        module = _alias(name, importlib.import_module(target))
        if name in HELPERS_AT_TOP:
            module.__dict__.update({h: getattr(importlib.import_module("clients.afm.datatypes"), h)
                                    for h in HELPERS_AT_TOP[name]})
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and parent.split(".")[0] in kept:
            setattr(sys.modules[parent], child, module)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
        for module, attribute, previous in reversed(patched):
            if previous is _MISSING:
                module.__dict__.pop(attribute, None)
            else:
                setattr(module, attribute, previous)


_MISSING = object()


def run_script(path: str, arguments: list[str], host: str, port: int) -> None:
    """Run the script at ``path`` as ``__main__`` with ``arguments``, against the twin at ``host:port``."""
    argv = sys.argv
    sys.argv = [path, *arguments]
    try:
        with vendor_modules(), redirect_connections(host, port):
            runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = argv
