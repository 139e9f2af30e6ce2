"""``twin run SCRIPT.py``: a script written for the vendor's client, run unchanged against the twin.

For the run only, the vendor's module names resolve to this project's clients and every connection
goes to the twin, whatever address the script names. Nothing is installed under a vendor's name: the
aliases live in ``sys.modules`` of this process until the script ends.
"""

from __future__ import annotations

import contextlib
import importlib
import runpy
import sys
import types
from collections.abc import Iterator

from clients._remote import redirect_connections

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
}


def _alias(name: str, target: types.ModuleType) -> types.ModuleType:
    """A module called ``name`` that offers everything ``target`` does (and can hold submodules)."""
    module = types.ModuleType(name, target.__doc__)
    public = {k: v for k, v in vars(target).items() if not k.startswith("__") or k == "__all__"}
    module.__dict__.update(public)
    module.__path__ = []
    return module


@contextlib.contextmanager
def vendor_modules() -> Iterator[None]:
    """Within this block the vendor's module names import this project's clients."""
    saved = {name: sys.modules.get(name) for name in VENDOR_MODULES}
    for name, target in VENDOR_MODULES.items():
        sys.modules[name] = _alias(name, importlib.import_module(target))
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def run_script(path: str, arguments: list[str], host: str, port: int) -> None:
    """Run the script at ``path`` as ``__main__`` with ``arguments``, against the twin at ``host:port``."""
    argv = sys.argv
    sys.argv = [path, *arguments]
    try:
        with vendor_modules(), redirect_connections(host, port):
            runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = argv
