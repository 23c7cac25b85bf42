"""AdaptCL's pruned-rate learning from observed round times (docs/methods.md §2 step 4).

No capability is known in advance: every worker starts at rate 0 and the learner only
sees how long each took. With t* the fastest time of a worker still at rate 0 (a running
minimum), a worker slower than t*·(1 + slack) shrinks its kept fraction toward the time
t*·(1 + slack/2), the middle of the tolerated band:

    (1 - r_new) = (1 - r) · (target / t)^(step / 2)

The exponent 1/2 is the convolutional-net model (compute and bytes grow with the square
of the kept fraction); the first layer and the classifier grow only linearly, so the
time usually falls less than modelled and the worker approaches the band from above.
Channels come in whole units, though, so a small sub-model can jump below t*. That is
why t* is taken from unpruned workers only: were a pruned worker's time the reference,
one such jump would drag everyone else (the fastest included) down after it, round after
round. Rates never grow back, as in the published method; ``max_rate``
caps them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any


class PrunedRateLearner:
    def __init__(self, slack: float, max_rate: float, step: float = 1.0) -> None:
        if slack <= 0 or not 0 <= max_rate < 1 or not 0 < step <= 1:
            raise ValueError("need slack > 0, 0 <= max_rate < 1 and 0 < step <= 1")
        self.slack = slack
        self.max_rate = max_rate
        self.step = step
        self.rates: dict[int, float] = {}
        self.fastest = math.inf

    def rate(self, client: int) -> float:
        return self.rates.get(client, 0.0)

    def observe(self, seconds: Mapping[int, float]) -> None:
        """Update the rates of the workers that took part, from their round times."""
        unpruned = [elapsed for client, elapsed in seconds.items() if self.rate(client) == 0.0]
        self.fastest = min([self.fastest, *unpruned])
        if math.isinf(self.fastest):
            return  # no unpruned worker seen yet: nothing to measure against
        target = self.fastest * (1 + self.slack / 2)
        for client, elapsed in seconds.items():
            if elapsed > self.fastest * (1 + self.slack):
                kept = (1 - self.rate(client)) * (target / elapsed) ** (self.step / 2)
                self.rates[client] = min(self.max_rate, 1 - kept)

    def state(self) -> dict[str, Any]:
        """What the learner has learned, as JSON values (for the server checkpoint)."""
        return {
            "rates": {str(c): r for c, r in self.rates.items()},
            "fastest": None if math.isinf(self.fastest) else self.fastest,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.rates = {int(c): float(r) for c, r in state["rates"].items()}
        self.fastest = math.inf if state["fastest"] is None else float(state["fastest"])


class FittedRateLearner:
    """The specification's other rule: fit each worker's time from its history, then solve.

    Each observation t at rate r estimates the worker's full-model time as t / (1 - r)²
    (the same quadratic cost model as :class:`PrunedRateLearner`); a worker's estimate is
    the median of its last ``window`` ones. t* is the smallest estimate; a worker whose
    estimate is within t*·(1 + slack) runs the full model, any other gets the rate that
    brings its estimate to t*·(1 + slack/2). Rates are recomputed from the estimates every
    round, so one noisy round cannot ratchet a rate up for good: with device times that
    vary from round to round the published step rule mistakes a fast device's slow draw
    for a slow device (docs/methods.md §2).
    """

    def __init__(self, slack: float, max_rate: float, window: int = 5) -> None:
        if slack <= 0 or not 0 <= max_rate < 1 or window < 1:
            raise ValueError("need slack > 0, 0 <= max_rate < 1 and window >= 1")
        self.slack = slack
        self.max_rate = max_rate
        self.window = window
        self.rates: dict[int, float] = {}
        self.history: dict[int, list[float]] = {}  # per worker, its recent full-model time estimates

    def rate(self, client: int) -> float:
        return self.rates.get(client, 0.0)

    def observe(self, seconds: Mapping[int, float]) -> None:
        """Add this round's times to the estimates and solve every worker's rate again."""
        for client, elapsed in seconds.items():
            recent = self.history.setdefault(client, [])
            recent.append(elapsed / (1 - self.rate(client)) ** 2)
            del recent[: -self.window]
        estimates = {client: statistics.median(recent) for client, recent in self.history.items()}
        fastest = min(estimates.values(), default=math.inf)
        for client, estimate in estimates.items():
            if estimate <= fastest * (1 + self.slack):
                self.rates[client] = 0.0
            else:
                kept = math.sqrt(fastest * (1 + self.slack / 2) / estimate)
                self.rates[client] = min(self.max_rate, 1 - kept)

    def state(self) -> dict[str, Any]:
        return {
            "rates": {str(c): r for c, r in self.rates.items()},
            "history": {str(c): list(h) for c, h in self.history.items()},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.rates = {int(c): float(r) for c, r in state["rates"].items()}
        self.history = {int(c): [float(v) for v in h] for c, h in state["history"].items()}
