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
from collections.abc import Mapping


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
