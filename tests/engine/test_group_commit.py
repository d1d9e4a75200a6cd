"""Group commit: concurrent small writes share a transaction, each caller resumes only once its
write is committed, and one failing write never takes the others down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from orderbridge.engine.group_commit import GroupCommit
from orderbridge.ledger.db import create_engine

meta = sa.MetaData()
notes = sa.Table("notes", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(50)))


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = create_engine(f"sqlite:///{tmp_path / 'gc.sqlite'}")
    meta.create_all(eng)
    return eng


def visible(engine: sa.Engine, text: str) -> bool:
    with engine.connect() as conn:  # another connection: sees only what is committed
        return conn.execute(sa.select(notes.c.id).where(notes.c.text == text)).first() is not None


def test_concurrent_writes_commit_together_and_resume_only_when_durable(engine: sa.Engine) -> None:
    commits = []
    sa.event.listen(engine, "commit", lambda conn: commits.append(1))

    async def main() -> list[bool]:
        gc = GroupCommit(engine)

        async def write(i: int) -> bool:
            await gc.run(lambda conn: conn.execute(notes.insert().values(text=f"n{i}")))
            return visible(engine, f"n{i}")

        first = await asyncio.gather(*(write(i) for i in range(30)))
        # Writes that arrive while a group is being committed form the next group.
        second = await asyncio.gather(*(write(i) for i in range(30, 60)))
        return first + second

    assert asyncio.run(main()) == [True] * 60
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one() == 60
    assert 2 <= len(commits) <= 10, commits  # 60 writes, a few transactions


def test_a_failing_write_fails_alone(engine: sa.Engine) -> None:
    async def main() -> list[object]:
        gc = GroupCommit(engine)

        def bad(conn: sa.Connection) -> None:
            conn.execute(notes.insert().values(text="bad"))
            raise ValueError("refused")

        return await asyncio.gather(
            gc.run(lambda conn: conn.execute(notes.insert().values(text="a")).rowcount),
            gc.run(bad),
            gc.run(lambda conn: conn.execute(notes.insert().values(text="b")).rowcount),
            return_exceptions=True)

    outcome = asyncio.run(main())
    assert outcome[0] == 1 and outcome[2] == 1 and isinstance(outcome[1], ValueError)
    assert visible(engine, "a") and visible(engine, "b") and not visible(engine, "bad")


def test_a_failed_shared_commit_falls_back_to_one_transaction_each(engine: sa.Engine) -> None:
    failures = {"left": 1}

    def fail_once(conn: sa.Connection) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))

    sa.event.listen(engine, "commit", fail_once)

    async def main() -> list[int]:
        gc = GroupCommit(engine)
        return list(await asyncio.gather(*(
            gc.run(lambda conn, i=i: conn.execute(notes.insert().values(text=f"r{i}")).rowcount)
            for i in range(5))))

    assert asyncio.run(main()) == [1] * 5
    assert all(visible(engine, f"r{i}") for i in range(5))
