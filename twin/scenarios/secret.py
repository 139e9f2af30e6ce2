"""The organiser's secret key: a served episode's hidden state comes from it and the public seed together.

A challenge server makes a random 256-bit key when it first starts (``organiser.key`` in the journal
folder, readable by its owner only) and keeps using it (``--resume``, later events). Each episode's
sample, hidden settings, events and noise are drawn from ``HMAC-SHA256(key, scenario, seed)``, so the
seed and the source code together give nothing: without the key no one can rebuild an episode. Journals
record the key's id (never the key); replaying or scoring one needs the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "organiser.key"
_KEY_BYTES = 32


@dataclass(frozen=True)
class OrganiserKey:
    """A secret key (32 random bytes) and what is derived from it."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != _KEY_BYTES:
            raise ValueError(f"organiser key has {len(self.secret)} bytes; a key has {_KEY_BYTES}")

    def __repr__(self) -> str:  # never print the key itself
        return f"OrganiserKey(id={self.id})"

    @classmethod
    def generate(cls) -> OrganiserKey:
        return cls(secrets.token_bytes(_KEY_BYTES))

    @property
    def id(self) -> str:
        """A public name of the key (journals record it; it reveals nothing of the key)."""
        return hashlib.sha256(b"microscope-twin key id\0" + self.secret).hexdigest()[:16]

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self.secret, "\0".join(parts).encode(), hashlib.sha256).digest()

    def episode_seed(self, scenario: str, seed: int) -> int:
        """The seed (0 to 2^63 - 1) an episode of ``scenario`` played from public ``seed`` draws from."""
        return int.from_bytes(self._mac("episode", scenario, str(int(seed)))[:8], "big") >> 1

    def organiser_token(self) -> str:
        """What the organiser's tools show the server to read the full leaderboard (names, seeds)."""
        return self._mac("organiser").hex()

    def is_organiser(self, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token, self.organiser_token())

    # --- the key file ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> OrganiserKey:
        """The key in the file at ``path`` (64 hex digits)."""
        try:
            text = Path(path).read_text().strip()
        except OSError as error:
            raise ValueError(f"organiser key {str(path)!r} cannot be read: {error}") from None
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise ValueError(f"organiser key {str(path)!r} is not a key file (64 hex digits, as "
                             "`twin serve --scenario` writes)") from None

    @classmethod
    def load_or_create(cls, path: str | Path) -> tuple[OrganiserKey, bool]:
        """The key at ``path``, made (readable by its owner only) if there is none; and whether it was
        made."""
        path = Path(path)
        if path.exists():
            return cls.load(path), False
        key = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            raise ValueError(f"organiser key {str(path)!r} cannot be written: {error}") from None
        with os.fdopen(descriptor, "w") as file:
            file.write(key.secret.hex() + "\n")
        return key, True


def key_for_journal(journal: str | Path, key_file: str | Path | None, key_id: str | None
                    ) -> OrganiserKey | None:
    """The key a journal written with key ``key_id`` needs: ``key_file`` if given, else ``organiser.key``
    beside the journal; None for a journal played without a key. Refuses a missing or different key."""
    if key_id is None:
        return None
    path = Path(key_file) if key_file is not None else Path(journal).parent / KEY_FILE
    if not path.is_file():
        raise ValueError(f"journal {str(journal)!r} was played with the organiser's secret key (id "
                         f"{key_id}); give its key file with --key (no {str(path)!r})")
    key = OrganiserKey.load(path)
    if key.id != key_id:
        raise ValueError(f"journal {str(journal)!r} was played with key {key_id}, but {str(path)!r} holds "
                         f"key {key.id}; give the key file of that event with --key")
    return key
