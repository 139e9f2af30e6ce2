"""The project's YAML files (samples, scenarios, dataset configs) read alike: an unreadable file or a
syntax error is a ValueError that names the file and, for a syntax error, the line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def parse(text: str, path: str | Path, what: str) -> Any:
    """The data in ``text``, read from the file ``path`` (a ``what``: "sample file", ...)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"
        problem = ", ".join(part for part in (error.context, error.problem) if part)
        raise ValueError(f"{what} {str(path)!r}{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {str(path)!r}: not valid YAML: {error}") from None


def read(path: str | Path, what: str) -> tuple[Any, str]:
    """The data in the YAML file at ``path`` (a ``what``) and the file's text."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {str(path)!r} cannot be read: {error}") from None
    return parse(text, path, what), text
