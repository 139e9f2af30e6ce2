"""What the instruments have spent (electrons, scan lines, scanned area), against optional limits.

A challenge gives each twin instance a budget; the instruments charge an acquisition *before* doing
it, so one that would overdraw is refused with nothing changed.
"""

from __future__ import annotations

import threading
from typing import Any

from twin.common.errors import BudgetExhausted

__all__ = ["METERED", "BudgetExhausted", "Usage"]

#: what can be metered: name -> (unit, what it counts)
METERED = {
    "electrons": ("e", "electrons sent onto the specimen (camera exposures and STEM scans)"),
    "lines": ("", "AFM scan lines started (every line of every frame)"),
    "scanned_area": ("m²", "AFM frame areas started"),
}


class Usage:
    """Running totals of :data:`METERED` quantities, each with an optional limit; thread-safe."""

    def __init__(self, limits: dict[str, float] | None = None) -> None:
        limits = dict(limits or {})
        unknown = set(limits) - set(METERED)
        if unknown:
            raise ValueError(f"budget {sorted(unknown)} cannot be metered; allowed: {', '.join(METERED)}")
        self.limits = limits
        self._spent = dict.fromkeys(METERED, 0.0)
        self._lock = threading.Lock()

    def charge(self, **amounts: float) -> None:
        """Spend ``amounts`` (all or nothing); raises :class:`BudgetExhausted` if any would overdraw."""
        with self._lock:
            for name, amount in amounts.items():
                limit = self.limits.get(name)
                if limit is not None and self._spent[name] + amount > limit:
                    unit, what = METERED[name]
                    raise BudgetExhausted(
                        f"budget exhausted: {name} = {self._spent[name]:.4g} of {limit:.4g} {unit} spent "
                        f"({what}); this call needs {amount:.4g} more"
                    )
            for name, amount in amounts.items():
                self._spent[name] += amount

    def spent(self) -> dict[str, float]:
        with self._lock:
            return dict(self._spent)

    def report(self) -> dict[str, dict[str, Any]]:
        """Every metered quantity: spent, limit (None: unlimited) and unit."""
        spent = self.spent()
        return {name: {"spent": spent[name], "limit": self.limits.get(name), "unit": METERED[name][0]}
                for name in METERED}
