"""The balancer's decisions with an injected clock and random source (no servers): orders are permutations,
the half-open probe goes first exactly once, stale latency averages are re-measured, in-flight counts never go
negative, and weighted picks follow the weights."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from llmops.core.errors import UpstreamError
from llmops.gateway.balancing import Balancer
from llmops.gateway.config import DeploymentConfig, ModelConfig, RouterConfig

STRATEGIES = ["ordered", "weighted", "least-busy", "lowest-latency"]


@dataclass(frozen=True)
class Dep:
    name: str
    alias: str = "chat"
    kind: str = "openai"
    upstream_model: str = "m"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _balancer(strategy: str, weights: list[float], clock: Clock, **router: float) -> tuple[Balancer, list[Dep]]:
    model = ModelConfig(
        name="chat",
        strategy=strategy,  # type: ignore[arg-type]
        deployments=[DeploymentConfig(provider="openai", weight=w) for w in weights],
    )
    deps = [Dep(f"d{i}") for i in range(len(weights))]
    b = Balancer(RouterConfig(**router), [model], monotonic=clock, wall=clock, rng=random.Random(1))  # type: ignore[arg-type]
    b.register({"chat": deps})
    return b, deps


def _fail(b: Balancer, dep: Dep, status: int = 500) -> None:
    b.acquire(dep)
    b.failure(dep, UpstreamError("boom", upstream_status=status), counts=True)


@given(
    strategy=st.sampled_from(STRATEGIES),
    weights=st.lists(st.floats(0.1, 10), min_size=1, max_size=6),
    failing=st.lists(st.integers(0, 5), max_size=10),
)
def test_order_is_always_a_permutation(strategy: str, weights: list[float], failing: list[int]) -> None:
    clock = Clock()
    b, deps = _balancer(strategy, weights, clock, cooldown_failures=1)
    for i in failing:
        if i < len(deps):
            _fail(b, deps[i])
    order = b.order("chat", deps)
    assert sorted(d.name for d in order) == sorted(d.name for d in deps)
    assert all(b.health(d).in_flight == 0 for d in deps)


def test_weighted_follows_the_weights() -> None:
    b, deps = _balancer("weighted", [1, 2, 7], Clock())
    first = Counter(b.order("chat", deps)[0].name for _ in range(20_000))
    assert abs(first["d2"] / 20_000 - 0.7) < 0.02 and abs(first["d1"] / 20_000 - 0.2) < 0.02


def test_half_open_probe_goes_first_once_then_recovers() -> None:
    clock = Clock()
    b, (a, c) = _balancer("ordered", [1, 1], clock, cooldown_failures=2, cooldown_s=10)
    _fail(b, a)
    assert b.order("chat", [a, c])[0] == a  # one failure: still healthy
    _fail(b, a)
    assert b.order("chat", [a, c]) == [c, a]  # cooled: last
    clock.t += 10.5
    assert b.state(b.health(a)) == "half-open"
    assert b.order("chat", [a, c])[0] == a  # this request is the probe
    assert b.order("chat", [a, c]) == [c, a]  # a concurrent request does not probe too
    b.acquire(a)
    b.success(a, 12.0)
    assert b.state(b.health(a)) == "healthy" and b.order("chat", [a, c])[0] == a


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    b, (a, c) = _balancer("ordered", [1, 1], clock, cooldown_failures=2, cooldown_window_s=5)
    _fail(b, a)
    clock.t += 6
    _fail(b, a)
    assert b.state(b.health(a)) == "healthy"


def test_lowest_latency_remeasures_a_stale_average() -> None:
    clock = Clock()
    b, (slow, fast) = _balancer("lowest-latency", [1, 1], clock, latency_stale_s=30)
    for dep, ms in ((slow, 500.0), (fast, 20.0)):
        b.acquire(dep)
        b.success(dep, ms)
    assert b.order("chat", [slow, fast])[0] == fast
    clock.t += 31  # both stale: config order decides, so the slow one gets a fresh sample
    assert b.order("chat", [slow, fast])[0] == slow
    b.acquire(slow)
    b.success(slow, 10.0)  # it got faster: EWMA moves by alpha
    assert b.health(slow).ewma_ms == 0.3 * 10 + 0.7 * 500


def test_release_and_client_errors() -> None:
    b, (a, _) = _balancer("least-busy", [1, 1], Clock(), cooldown_failures=1)
    b.release(a)
    assert b.health(a).in_flight == 0  # never negative
    b.acquire(a)
    b.failure(a, UpstreamError("bad request", upstream_status=400), counts=False)
    assert b.state(b.health(a)) == "healthy" and b.health(a).errors == 0
