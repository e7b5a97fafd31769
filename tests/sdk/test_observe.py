"""``@llmops.observe`` on functions, coroutines, generators and async generators (in-memory exporter)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import llmops
from llmops.sdk._content import TRUNCATED
from tests.sdk.conftest import Recorded, parent_id, span_id


def test_sync_function_records_arguments_and_result(sdk: Recorded) -> None:
    """A call becomes a span named after the function, with its arguments by name and its result, as JSON."""

    @llmops.observe
    def add(a: int, b: int = 0, *rest: int, scale: int = 1) -> dict[str, int]:
        return {"sum": (a + b + sum(rest)) * scale}

    assert add(1, 2, 3, 4, scale=2) == {"sum": 20}
    attrs = sdk.attrs("add")
    assert json.loads(attrs["input.value"]) == {"a": 1, "b": 2, "rest": [3, 4], "scale": 2}
    assert attrs["input.mime_type"] == "application/json"
    assert json.loads(attrs["output.value"]) == {"sum": 20}
    assert attrs["output.mime_type"] == "application/json"
    assert "llmops.span.kind" not in attrs
    assert sdk.one("add").status.status_code is StatusCode.UNSET


def test_bare_and_called_forms_keep_the_function_identity(sdk: Recorded) -> None:
    """``@observe`` and ``@observe()`` both trace; name and docstring of the function survive."""

    @llmops.observe
    def first(x: int) -> int:
        """Doc of first."""
        return x

    @llmops.observe()
    def second(x: int) -> int:
        return x

    assert first(1) == 1 and second(2) == 2
    assert first.__name__ == "first" and first.__doc__ == "Doc of first."
    assert {s.name for s in sdk.spans()} == {"first", "second"}


def test_string_output_is_text_and_none_output_is_omitted(sdk: Recorded) -> None:
    """A str result is stored as text/plain (not JSON-quoted); a None result and no arguments add nothing."""

    @llmops.observe
    def greet(name: str) -> str:
        return f"hi {name}"

    @llmops.observe
    def nothing() -> None:
        return None

    greet("ann")
    nothing()
    assert sdk.attrs("greet")["output.value"] == "hi ann"
    assert sdk.attrs("greet")["output.mime_type"] == "text/plain"
    assert not any(k.startswith(("input.", "output.")) for k in sdk.attrs("nothing"))


def test_nested_calls_are_parent_and_children(sdk: Recorded) -> None:
    """Observed calls inside an observed call are its children, in one trace."""

    @llmops.observe
    def leaf(i: int) -> int:
        return i

    @llmops.observe(name="pipeline", kind="chain")
    def pipeline() -> list[int]:
        return [leaf(i) for i in range(3)]

    pipeline()
    spans = sdk.spans()
    root = sdk.one("pipeline")
    leaves = [s for s in spans if s.name == "leaf"]
    assert len(leaves) == 3
    assert all(parent_id(s) == span_id(root) for s in leaves)
    assert len({s.context.trace_id for s in spans if s.context is not None}) == 1
    assert parent_id(root) is None


def test_kind_name_and_tags_options(sdk: Recorded) -> None:
    """``name=``, ``kind=`` (llmops and OpenInference attributes) and ``tags=`` land on the span."""

    @llmops.observe(name="search-docs", kind="retrieval", tags=["rag", "v2"])
    def search(q: str) -> list[str]:
        return [q]

    search("x")
    attrs = sdk.attrs("search-docs")
    assert attrs["llmops.span.kind"] == "retrieval"
    assert attrs["openinference.span.kind"] == "RETRIEVER"
    assert list(attrs["tag.tags"]) == ["rag", "v2"]


def test_unknown_kind_is_rejected_at_decoration_time(sdk: Recorded) -> None:
    """A typo in ``kind`` fails when the module is imported, not on the first call in production."""
    with pytest.raises(ValueError, match="unknown span kind 'llmm'"):
        llmops.observe(kind="llmm")  # type: ignore[call-overload]


def test_capture_options_keep_content_off(sdk: Recorded) -> None:
    """``capture_input=False`` / ``capture_output=False`` leave the arguments / result off the span."""

    @llmops.observe(capture_input=False)
    def secret_in(password: str) -> str:
        return "ok"

    @llmops.observe(capture_output=False)
    def secret_out(user: str) -> str:
        return "token-123"

    secret_in("hunter2")
    secret_out("ann")
    assert "input.value" not in sdk.attrs("secret_in") and sdk.attrs("secret_in")["output.value"] == "ok"
    assert "output.value" not in sdk.attrs("secret_out") and "ann" in sdk.attrs("secret_out")["input.value"]


def test_init_capture_content_false_switches_all_content_off(clean_env: None) -> None:
    """``init(capture_content=False)`` keeps every input and output off, whatever the decorators say."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    llmops.init(exporter=exporter, set_global_provider=False, capture_content=False)
    try:

        @llmops.observe
        def f(x: str) -> str:
            return x

        f("private")
        llmops.flush()
        (span,) = exporter.get_finished_spans()
        assert not any(k.startswith(("input.", "output.")) for k in span.attributes or {})
    finally:
        llmops.shutdown()


def test_exception_is_recorded_and_reraised_unchanged(sdk: Recorded) -> None:
    """The caller gets the very exception object, with the traceback down to the raising line; the span is
    marked ERROR with ``error.type`` and an ``exception`` event."""

    class QuotaError(RuntimeError):
        pass

    raised = QuotaError("over quota")

    @llmops.observe
    def call() -> None:
        raise raised

    with pytest.raises(QuotaError) as info:
        call()
    assert info.value is raised
    assert "raise raised" in "".join(traceback.format_tb(info.value.__traceback__))
    span = sdk.one("call")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "QuotaError: over quota"
    assert str((span.attributes or {})["error.type"]).endswith("QuotaError")
    assert [e.name for e in span.events] == ["exception"]


def test_methods_leave_out_self_and_cls(sdk: Recorded) -> None:
    """Instance, class and static methods are traced; ``self``/``cls`` are not captured as inputs."""

    class Agent:
        @llmops.observe
        def run(self, task: str) -> str:
            return task

        @llmops.observe
        @classmethod
        def build(cls, size: int) -> int:
            return size

        @llmops.observe
        @staticmethod
        def helper(n: int) -> int:
            return n

    assert Agent().run("t") == "t" and Agent.build(3) == 3 and Agent.helper(4) == 4
    assert json.loads(sdk.attrs("Agent.run")["input.value"]) == {"task": "t"}
    assert json.loads(sdk.attrs("Agent.build")["input.value"]) == {"size": 3}
    assert json.loads(sdk.attrs("Agent.helper")["input.value"]) == {"n": 4}


def test_unserialisable_values_never_break_the_call(sdk: Recorded) -> None:
    """Objects JSON cannot hold become their repr (or a model's ``model_dump``); the call still succeeds."""

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque 7>"

    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class Model:
        def model_dump(self, mode: str) -> dict[str, Any]:
            return {"field": mode}

    @dataclasses.dataclass
    class Point:
        x: int

    @llmops.observe
    def f(a: Any, b: Any, c: Any, d: Any, e: Any, g: Any) -> Any:
        return {2**70: "wide int key", "set": {1}}

    f(Opaque(), BadRepr(), Model(), Point(1), b"\x00\x01", 2**70)
    inputs = json.loads(sdk.attrs("f")["input.value"])
    assert inputs["a"] == "<Opaque 7>"
    assert "BadRepr" in inputs["b"]
    assert inputs["c"] == {"field": "json"}
    assert inputs["d"] == {"x": 1}
    assert inputs["e"] == "<2 bytes>"
    assert inputs["g"] == 2**70
    assert "wide int key" in sdk.attrs("f")["output.value"]


def test_long_content_is_cut_to_the_byte_limit(sdk: Recorded) -> None:
    """Inputs and outputs longer than ``max_content_bytes`` (1 KiB here) are cut on a character boundary to at
    most that many UTF-8 bytes, ending with the truncation marker."""

    @llmops.observe
    def echo(text: str) -> str:
        return text

    echo("é" * 5000)
    attrs = sdk.attrs("echo")
    for key in ("input.value", "output.value"):
        value = attrs[key]
        assert len(value.encode()) <= 1024
        assert value.endswith(TRUNCATED)
    assert attrs["output.value"].startswith("éé")


async def test_async_function_and_concurrent_tasks_keep_their_own_parents(sdk: Recorded) -> None:
    """Coroutines are traced when awaited; two concurrent tasks' children nest under their own task's span."""

    @llmops.observe
    async def step(tag: str) -> str:
        await asyncio.sleep(0)
        return tag

    @llmops.observe
    async def job(tag: str) -> list[str]:
        return [await step(tag) for _ in range(3)]

    assert await asyncio.gather(job("a"), job("b")) == [["a"] * 3, ["b"] * 3]
    spans = sdk.spans()
    jobs = {json.loads((s.attributes or {})["input.value"])["tag"]: s for s in spans if s.name == "job"}
    steps = [s for s in spans if s.name == "step"]
    assert len(steps) == 6
    for s in steps:
        tag = json.loads((s.attributes or {})["input.value"])["tag"]
        assert parent_id(s) == span_id(jobs[tag])


async def test_async_exception_is_recorded_and_reraised(sdk: Recorded) -> None:
    """An exception from a coroutine marks its span ERROR and reaches the awaiting caller unchanged."""
    err = KeyError("k")

    @llmops.observe
    async def lookup() -> None:
        await asyncio.sleep(0)
        raise err

    with pytest.raises(KeyError) as info:
        await lookup()
    assert info.value is err
    assert sdk.one("lookup").status.status_code is StatusCode.ERROR


def test_generator_span_covers_iteration_and_body_context_only(sdk: Recorded) -> None:
    """A generator's span spans its iteration; calls made by its body are children, calls made by the
    consumer between items are not; the output is the yielded strings joined."""

    @llmops.observe
    def inner(i: int) -> int:
        return i

    @llmops.observe
    def consumer_side() -> None:
        return None

    @llmops.observe
    def tokens(n: int) -> Iterator[str]:
        for i in range(n):
            inner(i)
            yield f"t{i} "

    for _ in tokens(3):
        consumer_side()
    gen_span = sdk.one("tokens")
    spans = sdk.spans()
    assert [parent_id(s) for s in spans if s.name == "inner"] == [span_id(gen_span)] * 3
    assert [parent_id(s) for s in spans if s.name == "consumer_side"] == [None] * 3
    assert sdk.attrs("tokens")["output.value"] == "t0 t1 t2 "
    assert gen_span.status.status_code is StatusCode.UNSET


def test_generator_send_throw_and_return_value_are_delegated(sdk: Recorded) -> None:
    """``send`` values and ``throw`` exceptions reach the wrapped generator; its return value comes back
    through ``yield from``; non-string items are recorded as a JSON list."""

    @llmops.observe
    def accumulator() -> Iterator[int]:
        total = 0
        while True:
            try:
                value = yield total
            except ValueError:
                value = 100
            if value is None:
                return total  # type: ignore[misc]
            total += value

    def outer() -> Iterator[int]:
        result = yield from accumulator()
        return result  # type: ignore[misc]

    gen = outer()
    assert next(gen) == 0
    assert gen.send(1) == 1  # type: ignore[attr-defined]
    assert gen.send(10) == 11  # type: ignore[attr-defined]
    assert gen.throw(ValueError()) == 111  # type: ignore[attr-defined]
    with pytest.raises(StopIteration) as stop:
        gen.send(None)  # type: ignore[attr-defined]
    assert stop.value.value == 111
    assert json.loads(sdk.attrs("accumulator")["output.value"]) == [0, 1, 11, 111]


def test_generator_closed_early_runs_its_finally_and_ends_ok(sdk: Recorded) -> None:
    """Closing the generator closes the wrapped one (its ``finally`` runs) and ends the span ok, flagged
    ``llmops.closed_early``, with the items seen so far."""
    cleaned: list[bool] = []

    @llmops.observe
    def endless() -> Iterator[str]:
        try:
            while True:
                yield "x"
        finally:
            cleaned.append(True)

    gen = endless()
    assert [next(gen), next(gen)] == ["x", "x"]
    gen.close()  # type: ignore[attr-defined]
    assert cleaned == [True]
    attrs = sdk.attrs("endless")
    assert attrs["llmops.closed_early"] is True
    assert attrs["output.value"] == "xx"
    assert sdk.one("endless").status.status_code is StatusCode.UNSET


def test_generator_error_is_recorded_and_reraised(sdk: Recorded) -> None:
    """An exception raised mid-iteration ends the span ERROR and reaches the consumer unchanged."""
    err = RuntimeError("stream broke")

    @llmops.observe
    def broken() -> Iterator[int]:
        yield 1
        raise err

    with pytest.raises(RuntimeError) as info:
        list(broken())
    assert info.value is err
    assert sdk.one("broken").status.status_code is StatusCode.ERROR


def test_generator_output_is_bounded(sdk: Recorded) -> None:
    """A long stream keeps only what fits the content limit; the output says it was truncated."""

    @llmops.observe
    def many() -> Iterator[str]:
        for _ in range(10_000):
            yield "abcdefgh"

    assert sum(1 for _ in many()) == 10_000
    value = sdk.attrs("many")["output.value"]
    assert len(value.encode()) <= 1024 and value.endswith(TRUNCATED)


async def test_async_generator_items_asend_and_children(sdk: Recorded) -> None:
    """Async generators: items recorded, ``asend`` delegated, body calls nested under the generator span."""

    @llmops.observe
    async def inner() -> int:
        return 1

    @llmops.observe
    async def doubler() -> AsyncIterator[int]:
        value = 1
        while value:
            await inner()
            value = yield value * 2

    gen = doubler()
    assert await gen.asend(None) == 2  # type: ignore[attr-defined]
    assert await gen.asend(5) == 10  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await gen.asend(0)  # type: ignore[attr-defined]
    span = sdk.one("doubler")
    assert json.loads((span.attributes or {})["output.value"]) == [2, 10]
    assert [parent_id(s) for s in sdk.spans() if s.name == "inner"] == [span_id(span)] * 2


async def test_async_generator_aclose_and_error(sdk: Recorded) -> None:
    """``aclose`` ends the span ok and closed early (the body's ``finally`` runs); an exception ends it ERROR."""
    cleaned: list[bool] = []

    @llmops.observe
    async def ticks() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
        finally:
            cleaned.append(True)

    @llmops.observe
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ValueError("bad chunk")

    gen = ticks()
    assert await gen.__anext__() == 1
    await gen.aclose()  # type: ignore[attr-defined]
    assert cleaned == [True]
    assert sdk.attrs("ticks")["llmops.closed_early"] is True
    with pytest.raises(ValueError, match="bad chunk"):
        [i async for i in failing()]
    assert sdk.one("failing").status.status_code is StatusCode.ERROR


async def test_without_init_everything_passes_through(clean_env: None) -> None:
    """Before ``init`` (or after ``shutdown``) decorated callables behave exactly as undecorated ones."""

    @llmops.observe
    def f(x: int) -> int:
        return x + 1

    @llmops.observe
    def g() -> Iterator[int]:
        got = yield 1
        yield got

    @llmops.observe
    async def h() -> AsyncIterator[int]:
        yield 1

    assert f(1) == 2
    gen = g()
    assert next(gen) == 1 and gen.send(5) == 5  # type: ignore[attr-defined]
    assert [i async for i in h()] == [1]
    assert llmops.flush() is True
