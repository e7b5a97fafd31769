"""Load balancing across the deployments of one alias, with cooldown of failing deployments.

Strategies (``strategy:`` on the alias in llmops.yaml):

- ``ordered`` (default): the configured order; later deployments are fallbacks.
- ``weighted``: a weighted random order (``weight`` per deployment; Efraimidis-Spirakis keys ``u ** (1 / w)``),
  so the first pick follows the weights and the fallbacks are weighted too.
- ``least-busy``: fewest requests in flight first (a stream counts until it ends); ties keep config order.
- ``lowest-latency``: lowest EWMA latency of successful attempts first (time to the first chunk for streams).
  A deployment without a sample, or whose average is older than ``latency_stale_s``, sorts first, so a
  deployment that was slow once is measured again instead of being starved for ever.

Cooldown (every strategy): ``cooldown_failures`` failed attempts (429, 5xx, timeouts, connection errors; never
the client's own 4xx) within ``cooldown_window_s`` take a deployment out of rotation for ``cooldown_s``. After
that it is half-open: the next request tries it first, as the one probe; success makes it healthy, failure cools
it again at once. A cooling deployment is still tried last, after every healthy one failed: cooldown never turns
a request away on its own. State is per process (each replica learns its own view), in memory, guarded by no
lock: every method runs on the event loop thread and never awaits.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llmops.gateway.config import ModelConfig, RouterConfig, Strategy

State = Literal["healthy", "cooldown", "half-open"]
RECENT_ERRORS = 5


@dataclass
class RecentError:
    at: float  # wall-clock seconds
    error_type: str
    status_code: int | None
    code: str | None


@dataclass
class DeploymentHealth:
    """What the balancer knows about one deployment (never request content: see ``RecentError``)."""

    name: str
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    in_flight: int = 0
    ewma_ms: float | None = None
    last_sample: float = 0.0  # monotonic
    requests: int = 0
    errors: int = 0
    cooldowns: int = 0
    cooldown_until: float = 0.0  # monotonic; 0: never cooled
    probing: bool = False
    failures: deque[float] = field(default_factory=deque)  # monotonic times within the window
    recent_errors: deque[RecentError] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))


class Balancer:
    """Orders an alias's deployments for one request and keeps their health."""

    def __init__(
        self,
        config: RouterConfig,
        models: Sequence[ModelConfig] = (),
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._now = monotonic
        self._wall = wall
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._strategies: dict[str, Strategy] = {m.name: m.strategy for m in models}
        self._health: dict[tuple[str, str], DeploymentHealth] = {}
        self._configs = {m.name: m for m in models}
        self._cooled = 0  # deployments with a cooldown set: none (the usual case) lets `ordered` skip all checks

    def strategy(self, alias: str) -> Strategy:
        return self._strategies.get(alias, "ordered")

    def register(self, routes: dict[str, list[Any]]) -> None:
        """Take each deployment's weight and limits from config (routes[alias][i] is deployments[i])."""
        for alias, deps in routes.items():
            model = self._configs.get(alias)
            for i, dep in enumerate(deps):
                h = self.health(dep)
                if model is not None and i < len(model.deployments):
                    cfg = model.deployments[i]
                    h.weight, h.rpm, h.tpm = cfg.weight, cfg.rpm, cfg.tpm

    def health(self, dep: Any) -> DeploymentHealth:
        key = (dep.alias, dep.name)
        h = self._health.get(key)
        if h is None:
            h = self._health[key] = DeploymentHealth(dep.name)
        return h

    def state(self, h: DeploymentHealth, now: float | None = None) -> State:
        now = self._now() if now is None else now
        if h.cooldown_until == 0.0:
            return "healthy"
        return "cooldown" if now < h.cooldown_until or h.probing else "half-open"

    def order(self, alias: str, deployments: Sequence[Any]) -> list[Any]:
        """The deployments to try for one request, best first; cooling ones last (by cooldown end)."""
        if len(deployments) == 1 or (self._cooled == 0 and self.strategy(alias) == "ordered"):
            return list(deployments)
        now = self._now()
        healthy, cooling, probe = [], [], None
        for i, dep in enumerate(deployments):
            h = self.health(dep)
            st = self.state(h, now)
            if st == "half-open" and probe is None:
                probe = dep
                h.probing = True  # this request is the probe: others treat it as cooling until it answers
            elif st == "healthy":
                healthy.append((i, dep, h))
            else:
                cooling.append((h.cooldown_until, i, dep))
        ordered = self._by_strategy(self.strategy(alias), healthy, now)
        tail = [dep for _, _, dep in sorted(cooling, key=lambda c: (c[0], c[1]))]
        return ([probe] if probe is not None else []) + ordered + tail

    def _by_strategy(self, strategy: Strategy, items: list[tuple[int, Any, DeploymentHealth]], now: float) -> list[Any]:
        if strategy == "weighted":
            keys = [(self._rng.random() ** (1.0 / h.weight), i, dep) for i, dep, h in items]
            return [dep for _, _, dep in sorted(keys, key=lambda k: (-k[0], k[1]))]
        if strategy == "least-busy":
            return [dep for _, dep, _ in sorted(items, key=lambda t: (t[2].in_flight, t[0]))]
        if strategy == "lowest-latency":
            stale = self._config.latency_stale_s

            def latency(t: tuple[int, Any, DeploymentHealth]) -> tuple[float, int]:
                h = t[2]
                fresh = h.ewma_ms is not None and now - h.last_sample <= stale
                return (h.ewma_ms if fresh and h.ewma_ms is not None else -1.0, t[0])

            return [dep for _, dep, _ in sorted(items, key=latency)]
        return [dep for _, dep, _ in items]

    # --- the request path reports every attempt -----------------------------------------------------------------

    def acquire(self, dep: Any) -> None:
        h = self.health(dep)
        h.in_flight += 1
        h.requests += 1

    def release(self, dep: Any) -> None:
        h = self.health(dep)
        h.in_flight = max(0, h.in_flight - 1)
        h.probing = False  # a cancelled probe: the next request probes again

    def success(self, dep: Any, latency_ms: float, *, release: bool = True) -> None:
        h = self.health(dep)
        if release:
            h.in_flight = max(0, h.in_flight - 1)
        alpha = self._config.latency_alpha
        h.ewma_ms = latency_ms if h.ewma_ms is None else alpha * latency_ms + (1 - alpha) * h.ewma_ms
        h.last_sample = self._now()
        if h.cooldown_until:  # a successful probe: healthy again
            h.cooldown_until, h.probing = 0.0, False
            h.failures.clear()
            self._cooled -= 1

    def failure(self, dep: Any, exc: Any, *, counts: bool) -> None:
        """One failed attempt; ``counts`` is False for the client's own 4xx (it says nothing about health)."""
        h = self.health(dep)
        h.in_flight = max(0, h.in_flight - 1)
        if not counts:
            h.probing = False
            return
        now, cfg = self._now(), self._config
        h.errors += 1
        code = getattr(exc, "code", None)
        h.recent_errors.append(
            RecentError(self._wall(), type(exc).__name__, getattr(exc, "upstream_status", None), code)
        )
        if h.probing or h.cooldown_until:  # the probe failed: cool again at once
            self._cool(h, now)
            return
        h.failures.append(now)
        while h.failures and h.failures[0] < now - cfg.cooldown_window_s:
            h.failures.popleft()
        if len(h.failures) >= cfg.cooldown_failures:
            self._cool(h, now)

    def _cool(self, h: DeploymentHealth, now: float) -> None:
        if not h.cooldown_until:
            self._cooled += 1
        h.cooldown_until = now + self._config.cooldown_s
        h.cooldowns += 1
        h.probing = False
        h.failures.clear()

    def cooling(self, dep: Any) -> bool:
        return self.state(self.health(dep)) != "healthy"

    # --- health report ------------------------------------------------------------------------------------------

    def snapshot(self, routes: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """Per alias: strategy and each deployment's health (GET /api/gateway/deployments, the UI panel)."""
        now, wall = self._now(), self._wall()
        out = []
        for alias, deps in routes.items():
            rows = []
            for dep in deps:
                h = self.health(dep)
                until = wall + (h.cooldown_until - now) if h.cooldown_until and h.cooldown_until > now else None
                rows.append(
                    {
                        "name": dep.name,
                        "provider": dep.kind,
                        "model": dep.upstream_model,
                        "weight": h.weight,
                        "rpm": h.rpm,
                        "tpm": h.tpm,
                        "state": self.state(h, now),
                        "in_flight": h.in_flight,
                        "ewma_latency_ms": round(h.ewma_ms, 3) if h.ewma_ms is not None else None,
                        "requests": h.requests,
                        "errors": h.errors,
                        "cooldowns": h.cooldowns,
                        "cooldown_until": until,
                        "recent_errors": [
                            {"at": e.at, "type": e.error_type, "status_code": e.status_code, "code": e.code}
                            for e in h.recent_errors
                        ],
                    }
                )
            out.append({"model": alias, "strategy": self.strategy(alias), "deployments": rows})
        return out
