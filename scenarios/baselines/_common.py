"""What every baseline shares: the command line and the challenge connection."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def main(run: Callable[[str, int, str | None], dict[str, Any]], description: str) -> None:
    """Parse ``--host --port --instance``, run the baseline and print its score."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--instance", default=None, help="your instance's name or token")
    args = parser.parse_args()
    result = run(args.host, args.port, args.instance)
    print(f"score {result['score']:.4f}  {result['details']}")
