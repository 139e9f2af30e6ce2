"""The challenge side of a twin instance: goal, budgets, answer, journal; and the organiser's board.

    from clients.challenge import Challenge
    challenge = Challenge("127.0.0.1", 9095, instance="team-a")
    print(challenge.goal)
    ...                                   # drive the TEM and AFM clients (same instance)
    result = challenge.submit({...})      # {"score": 0..1, "details": {...} if the organiser allows}
"""

from __future__ import annotations

from typing import Any

from clients._remote import Connection, open_proxy
from twin.common import wire


class Challenge:
    """One team's episode on a twin running a scenario (``twin serve --scenario NAME``)."""

    def __init__(self, host: str | None = None, port: int | None = None, instance: str | None = None) -> None:
        self._connection = Connection(host, port, instance)
        self._remote  # fail now if this instance plays no scenario  # noqa: B018
        self.scenario: dict[str, Any] = self._remote.scenario()

    @property
    def _remote(self) -> Any:
        return self._connection[wire.EPISODE_OBJECT]

    @property
    def goal(self) -> str:
        return self.scenario["goal"]

    def status(self) -> dict[str, Any]:
        """Budgets spent and left, whether the episode is over, the score once answered."""
        return self._remote.status()

    def submit(self, answer: dict[str, Any] | None = None) -> dict[str, Any]:
        """Hand in the answer (once per episode); returns ``{"score", "details"}``."""
        return self._remote.submit(answer or {})

    def journal(self, start: int = 0) -> list[dict[str, Any]]:
        """The episode's journal entries from number ``start`` on."""
        return self._remote.journal(start)

    def close(self) -> None:
        self._connection.close()


def leaderboard(host: str | None = None, port: int | None = None, organiser: str | None = None
                ) -> list[dict[str, Any]]:
    """Every instance playing a scenario on the server: scored ones best first, then the rest. Names (none
    on a private server) and scores; with the ``organiser`` token (``OrganiserKey.organiser_token()`` of
    the event's key file) names and seeds too."""
    hub = open_proxy(wire.HUB_OBJECT, host, port)
    try:
        return hub.leaderboard(organiser)
    finally:
        hub._pyroRelease()
