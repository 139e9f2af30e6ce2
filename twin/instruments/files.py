"""Files an instrument writes on the server's machine where a client said, kept inside its own folder.

A lab script names folders on the instrument PC (``C:\\Users\\lab\\Gallery``, ``D:/data/run 3``); the
twin keeps what the script named (and reports it back), but writes under the instance's own root:
the drive or leading slash is dropped and the rest is a path below the root. Climbing out (``..``),
a home folder (``~``), control characters and overlong names are refused.
"""

from __future__ import annotations

import re
from pathlib import Path, PureWindowsPath
from typing import Any

from twin.validation import brief


def default_data_dir() -> Path:
    """The twin's own data folder for this user (``~/.local/share/microscope-twin`` on Linux, the
    platform's equivalent elsewhere): files land there unless ``--data-dir`` says otherwise, never in
    the folder a command happens to run in (a clone of the repository, say)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("microscope-twin", appauthor=False))


MAX_PATH_CHARS = 240  # what Windows allows a path, about
MAX_NAME_CHARS = 64  # a file name start (the instrument appends a number and a suffix)
QUOTA_BYTES = 2 << 30  # what one instance's files may take on the server's disk
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def relative_parts(name: str, value: Any) -> tuple[str, ...]:
    """The folders of ``value`` (a path as a client gave it) below any drive or root; raises
    ValueError naming ``name`` for anything that is not a plain path downwards."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} = {brief(value)}: give a folder as a non-empty string")
    if len(value) > MAX_PATH_CHARS or _CONTROL.search(value):
        raise ValueError(f"{name} = {value[:60]!r}{'...' if len(value) > 60 else ''}: a folder path of at "
                         f"most {MAX_PATH_CHARS} printable characters")
    parts = PureWindowsPath(value.strip()).parts  # splits on both / and \, keeps a drive or root apart
    anchor = PureWindowsPath(value.strip()).anchor
    folders = tuple(p for p in parts if p != anchor and p not in ("", "."))
    if any(p == ".." for p in folders) or (folders and folders[0].startswith("~")):
        raise ValueError(f"{name} = {brief(value)}: name a folder without '..' or '~' (files stay in the "
                         "twin's own data folder)")
    if any(":" in p for p in folders):  # an NTFS stream, or a drive in the middle
        raise ValueError(f"{name} = {brief(value)}: ':' only after a drive letter at the start")
    return folders


def confined(root: Path, name: str, value: Any) -> Path:
    """Where the folder ``value`` a client named lives under ``root`` (see :func:`relative_parts`)."""
    return root.joinpath(*relative_parts(name, value))


def file_name_start(name: str, value: Any) -> str:
    """A file name start as a client gave it, checked: printable, no separators or wildcards, short."""
    if (not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS
            or _CONTROL.search(value) or any(c in value for c in '/\\:*?"<>|')):
        shown = value[:60] + "..." if isinstance(value, str) and len(value) > 60 else value
        raise ValueError(f"{name} = {shown!r}: give a file name start of 1 to {MAX_NAME_CHARS} printable "
                         "characters without path separators or wildcards")
    return value.strip()


def used_bytes(root: Path) -> int:
    """Bytes the files under ``root`` take."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def check_quota(root: Path, adding: int, quota: int = QUOTA_BYTES) -> None:
    """Raise RuntimeError if ``adding`` more bytes under ``root`` would pass ``quota``."""
    used = used_bytes(root)
    if used + adding > quota:
        raise RuntimeError(f"this twin's files take {used / 2**20:.2g} MiB of the {quota / 2**20:.2g} MiB it "
                           f"may use on the server; a capture needs {adding / 2**20:.2g} MiB more")
