"""The prompt registry behaves the same on SQLite and on a real PostgreSQL server (same migrations): versions,
idempotent pushes, labels with history, protected labels, rollback, canary, project isolation, and the
resolve cache following every write."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from llmops.prompts import LabelState, PromptService
from llmops.prompts._sql import SqlPromptStore
from tests.prompts.conftest import ADMIN, DEV, OTHER, chat_spec, text_spec


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "t_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    upgrade(eng)  # idempotent
    yield eng
    eng.dispose()


@pytest.fixture
def svc(engine: Engine) -> PromptService:
    return PromptService(SqlPromptStore(engine))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_push_numbers_versions_and_identical_content_is_a_no_op(svc: PromptService) -> None:
    """v1, then the same content again (nothing written), then changed content is v2; `latest` follows."""
    first = run(svc.push(DEV, text_spec(), name="greet", create=True, message="first"))
    again = run(svc.push(DEV, text_spec(), name="greet"))
    second = run(svc.push(DEV, text_spec("Hi {{ who }}."), name="greet", message="shorter"))
    assert (first.created, first.version.version) == (True, 1)
    assert (again.created, again.version.version, again.version.message) == (False, 1, "first")
    assert (second.created, second.version.version) == (True, 2)
    versions = run(svc.list_versions(DEV.project_id, "greet"))
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].content.template == "Hi {{ who }}." and versions[0].author == DEV.key_id
    assert versions[1].content == first.version.content and versions[1].content_hash == first.version.content_hash
    labels = run(svc.list_labels(DEV.project_id, "greet"))
    assert [(lb.label, lb.state) for lb in labels] == [("latest", LabelState(2))]
    history = run(svc.label_history(DEV.project_id, "greet"))
    assert [(m.action, m.before, m.after) for m in history] == [
        ("auto", LabelState(1), LabelState(2)),
        ("auto", None, LabelState(1)),
    ]


def test_chat_content_round_trips(svc: PromptService) -> None:
    """Chat messages, typed variables with defaults, params and tags come back exactly as pushed."""
    spec = chat_spec(tags=["support", "v2"], description="Replies to customers")
    pushed = run(svc.push(DEV, spec, name="support", create=True))
    got, _ = run(svc.get_version(DEV.project_id, "support", 1))
    assert got.content == pushed.version.content
    assert got.content.to_dict() == {**spec, "variables": {"who": {"type": "string"}, **_tone()}}


def _tone() -> dict[str, object]:
    return {"tone": {"type": "string", "default": "friendly"}}


def test_duplicate_names_conflict_but_projects_are_separate(svc: PromptService) -> None:
    """Creating a name twice is a 409 naming `name`; another project may use the same name."""
    run(svc.create_prompt(DEV, {**text_spec(), "name": "dup"}))
    with pytest.raises(ConflictError) as err:
        run(svc.create_prompt(DEV, {**text_spec(), "name": "dup"}))
    assert err.value.param == "name" and err.value.code == "prompt_exists"
    run(svc.create_prompt(OTHER, {**text_spec("B {{ who }}"), "name": "dup"}))
    assert run(svc.get_version(OTHER.project_id, "dup", "latest"))[0].content.template == "B {{ who }}"
    assert run(svc.get_version(DEV.project_id, "dup", "latest"))[0].content.template == "Hello {{ who }}!"


def test_projects_never_see_each_other(svc: PromptService) -> None:
    """Every read and write of another project's prompt is a 404, as if it did not exist."""
    run(svc.push(OTHER, text_spec(), name="secret", create=True))
    calls = [
        svc.get_prompt(DEV.project_id, "secret"),
        svc.list_versions(DEV.project_id, "secret"),
        svc.get_version(DEV.project_id, "secret", 1),
        svc.label_history(DEV.project_id, "secret"),
        svc.diff(DEV.project_id, "secret", 1, 1),
        svc.render(DEV.project_id, "secret", 1, {"who": "x"}),
        svc.resolve(DEV.project_id, "secret", "latest"),
        svc.move_label(ADMIN, "secret", "production", 1),
        svc.push(ADMIN, text_spec("x {{ who }}"), name="secret"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            run(call)
    assert run(svc.list_prompts(DEV.project_id)) == []


def test_labels_move_with_history_and_roll_back(svc: PromptService) -> None:
    """Each move is recorded (who, when, from -> to); rollback walks back through earlier targets."""
    for i in range(3):
        run(svc.push(DEV, text_spec(f"v{i + 1} {{{{ who }}}}"), name="p", create=True))
    for n in (1, 2, 3):
        run(svc.move_label(DEV, "p", "staging", n))
    assert run(svc.move_label(DEV, "p", "staging", 3)).state == LabelState(3)  # same target: no move recorded
    assert run(svc.rollback(DEV, "p", "staging")).state == LabelState(2)
    assert run(svc.rollback(DEV, "p", "staging")).state == LabelState(1)
    with pytest.raises(ConflictError) as err:
        run(svc.rollback(DEV, "p", "staging"))
    assert err.value.code == "nothing_to_roll_back"
    history = run(svc.label_history(DEV.project_id, "p", label="staging"))
    assert [(m.action, m.before and m.before.version, m.after.version) for m in history] == [
        ("rollback", 2, 1),
        ("rollback", 3, 2),
        ("move", 2, 3),
        ("move", 1, 2),
        ("move", None, 1),
    ]
    assert all(m.actor == DEV.key_id for m in history)


def test_bad_label_requests_name_the_field(svc: PromptService) -> None:
    """A missing version, the automatic `latest`, a malformed label and an unknown label are clear errors."""
    run(svc.push(DEV, text_spec(), name="p", create=True))
    with pytest.raises(NotFoundError) as missing:
        run(svc.move_label(DEV, "p", "staging", 7))
    assert missing.value.param == "version" and missing.value.code == "version_not_found"
    with pytest.raises(InvalidInputError) as reserved:
        run(svc.move_label(DEV, "p", "latest", 1))
    assert reserved.value.code == "label_reserved"
    with pytest.raises(InvalidInputError) as bad:
        run(svc.move_label(DEV, "p", "Bad Label", 1))
    assert bad.value.param == "label"
    with pytest.raises(NotFoundError) as unknown:
        run(svc.rollback(DEV, "p", "nope"))
    assert unknown.value.code == "label_not_found"


def test_protected_labels_need_an_admin_key(svc: PromptService) -> None:
    """`production` is protected by default; the protected set is per prompt and only admins change it."""
    run(svc.push(DEV, text_spec(), name="p", create=True))
    with pytest.raises(PermissionDeniedError) as err:
        run(svc.move_label(DEV, "p", "production", 1))
    assert err.value.param == "label" and "protected" in err.value.message
    assert run(svc.move_label(ADMIN, "p", "production", 1)).updated_by == ADMIN.key_id
    with pytest.raises(PermissionDeniedError):
        run(svc.set_protected_labels(DEV, "p", []))
    run(svc.set_protected_labels(ADMIN, "p", ["staging"]))
    run(svc.move_label(DEV, "p", "production", 1))
    with pytest.raises(PermissionDeniedError):
        run(svc.move_label(DEV, "p", "staging", 1))
    for call in (svc.rollback(DEV, "p", "staging"), svc.set_canary(DEV, "p", "staging", 1, 5)):
        with pytest.raises(PermissionDeniedError):
            run(call)


def test_canary_split_is_proportional_sticky_and_rolled_back(svc: PromptService) -> None:
    """90/10 split: about 10% of users get the canary, each user always the same side; rollback ends it."""
    run(svc.push(DEV, text_spec("A {{ who }}"), name="c", create=True))
    run(svc.push(DEV, text_spec("B {{ who }}"), name="c"))
    run(svc.move_label(ADMIN, "c", "production", 1))
    label = run(svc.set_canary(ADMIN, "c", "production", 2, 10))
    assert label.state == LabelState(1, 2, 10.0) and label.state.describe() == "v1 90% / v2 10%"

    async def sides() -> Counter[tuple[int, bool | None]]:
        out: Counter[tuple[int, bool | None]] = Counter()
        for i in range(2000):
            res = await svc.resolve(DEV.project_id, "c", "production", sticky_key=f"user-{i}")
            again = await svc.resolve(DEV.project_id, "c", "production", sticky_key=f"user-{i}")
            assert again.prompt.version == res.prompt.version
            out[(res.prompt.version, res.canary)] += 1
        return out

    counts = run(sides())
    assert set(counts) == {(1, False), (2, True)}
    assert 140 <= counts[(2, True)] <= 260  # 10% of 2000, with room for hashing
    assert run(svc.rollback(ADMIN, "c", "production")).state == LabelState(1)
    res = run(svc.resolve(DEV.project_id, "c", "production", sticky_key="user-1"))
    assert (res.prompt.version, res.canary) == (1, None)
    with pytest.raises(InvalidInputError):
        run(svc.set_canary(ADMIN, "c", "production", 2, 100))


def test_resolve_follows_every_write_at_once(svc: PromptService) -> None:
    """The resolve cache is invalidated by label moves and new versions in this process."""

    async def scenario() -> list[tuple[int | None, str | None]]:
        seen = []
        await svc.push(DEV, text_spec("one {{ who }}"), name="r", create=True)
        await svc.move_label(DEV, "r", "staging", 1)
        seen.append((await svc.resolve(DEV.project_id, "r", "staging")).prompt.version)
        await svc.push(DEV, text_spec("two {{ who }}"), name="r")
        seen.append((await svc.resolve(DEV.project_id, "r", "latest")).prompt.version)
        await svc.move_label(DEV, "r", "staging", 2)
        res = await svc.resolve(DEV.project_id, "r", "staging")
        seen.append(res.prompt.version)
        return [(v, None) for v in seen] + [(res.prompt.version, res.prompt.render(who="x"))]

    assert run(scenario()) == [(1, None), (2, None), (2, None), (2, "two x")]


def test_concurrent_pushes_get_distinct_versions(svc: PromptService) -> None:
    """Parallel pushes of different content never share a version number and none is lost."""
    run(svc.push(DEV, text_spec("base {{ who }}"), name="race", create=True))
    errors: list[BaseException] = []

    def push(i: int) -> None:
        try:
            run(svc.push(DEV, text_spec(f"t{i} {{{{ who }}}}"), name="race"))
        except ConflictError as exc:  # allowed under heavy contention: the caller is told to push again
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = run(svc.list_versions(DEV.project_id, "race"))
    numbers = [v.version for v in versions]
    assert numbers == list(range(len(numbers), 0, -1)) and len(numbers) == 7 - len(errors)
    assert len({v.content_hash for v in versions}) == len(versions)
