"""Delivery slots: how many webhook deliveries may be in flight at once, overall, per team and per endpoint.

A slow or hostile endpoint holds only its own endpoint's slots (and some of its team's); the claim skips
deliveries of a full endpoint or team, so the other teams' deliveries keep the rest.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Slots"]


@dataclass
class Slots:
    """Counts of deliveries in flight in this process, against the three limits."""

    total: int
    per_team: int
    per_endpoint: int
    _teams: Counter[uuid.UUID] = field(default_factory=Counter)
    _endpoints: Counter[uuid.UUID] = field(default_factory=Counter)

    @property
    def free(self) -> int:
        """Slots left overall."""
        return self.total - sum(self._endpoints.values())

    def full_teams(self) -> list[uuid.UUID]:
        """Teams with every one of their slots in use."""
        return [team for team, used in self._teams.items() if used >= self.per_team]

    def full_endpoints(self) -> list[uuid.UUID]:
        """Endpoints with every one of their slots in use."""
        return [endpoint for endpoint, used in self._endpoints.items() if used >= self.per_endpoint]

    def take(self, team: uuid.UUID, endpoint: uuid.UUID) -> bool:
        """Take a slot for a delivery to `endpoint` of `team`; False (and nothing taken) when a limit is reached."""
        if self.free <= 0 or self._teams[team] >= self.per_team or self._endpoints[endpoint] >= self.per_endpoint:
            return False
        self._teams[team] += 1
        self._endpoints[endpoint] += 1
        return True

    def give_back(self, team: uuid.UUID, endpoint: uuid.UUID) -> None:
        """The delivery ended (or was never started): its slot is free again."""
        for counts, key in ((self._teams, team), (self._endpoints, endpoint)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
