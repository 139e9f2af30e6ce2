"""What every baseline shares: the command line and the challenge connection."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from clients.challenge import Challenge
from clients.connection import DEFAULT_HOST, DEFAULT_PORT


class Game(NamedTuple):
    """What a baseline plays with: the challenge (to submit), the TEM client and the AFM, when asked."""

    challenge: Challenge
    microscope: Any  # clients.tem.TemMicroscopeClient, connected, or None
    spm: Any  # clients.afm.SPM or None


@contextlib.contextmanager
def play(host: str, port: int, instance: str | None, tem: bool = False, afm: bool = False) -> Iterator[Game]:
    """Connect to the challenge of ``instance`` at ``host:port`` and, as asked, its TEM and AFM; close
    them all when the block ends, however it ends."""
    challenge = Challenge(host, port, instance)
    microscope = spm = None
    try:
        if tem:
            from clients.tem import TemMicroscopeClient

            microscope = TemMicroscopeClient()
            microscope.connect(host, port, instance)
        if afm:
            from clients.afm import SPM

            spm = SPM(host, port, instance)
        yield Game(challenge, microscope, spm)
    finally:
        if spm is not None:
            spm.close()
        if microscope is not None:
            microscope.disconnect()
        challenge.close()


def main(run: Callable[[str, int, str | None], dict[str, Any]], description: str) -> None:
    """Parse ``--host --port --instance``, run the baseline and print its score."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="the challenge server's address (default "
                                                             "%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the challenge server's port (default %(default)s)")
    parser.add_argument("--instance", default=None, help="your instance's name or token (default: "
                                                         "$TWIN_INSTANCE, else the server's default one)")
    args = parser.parse_args()
    result = run(args.host, args.port, args.instance)
    print(f"score {result['score']:.4f}  {result['details']}")
