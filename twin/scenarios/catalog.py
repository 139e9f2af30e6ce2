"""The built-in scenario files and their titles, read without building a twin (``twin scenario list``
answers at once: nothing here imports the simulation)."""

from __future__ import annotations

from pathlib import Path

from twin import yaml_files

SUFFIX = ".scenario.yaml"


def directory() -> Path:
    """Where the built-in scenarios live (the ``scenarios`` folder next to the ``twin`` package)."""
    import scenarios

    return Path(scenarios.__file__).resolve().parent


def available() -> dict[str, Path]:
    """Built-in scenario name -> file."""
    return {p.name.removesuffix(SUFFIX): p for p in sorted(directory().glob(f"*{SUFFIX}"))}


def title(path: Path) -> str:
    """The one-line title of the scenario file at ``path``, as :func:`twin.scenarios.spec.load` reads it;
    raises ValueError naming the file if it cannot be read or has no title."""
    data, _ = yaml_files.read(path, "scenario file")
    if not isinstance(data, dict) or "title" not in data:
        raise ValueError(f"scenario file {str(path)!r}: title is missing")
    return str(data["title"]).strip()
