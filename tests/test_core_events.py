"""The event store on its own: ids, scoping, cursors, retention and the atomic ``also`` hook."""

from __future__ import annotations

import pytest

from daemons.events import EventStore


@pytest.fixture
def store(tmp_path):
    events = EventStore(tmp_path / "events.sqlite3")
    events.db.execute("CREATE TABLE reported (key TEXT PRIMARY KEY)")
    yield events
    events.close()


def test_ids_grow_and_survive_reopening(tmp_path):
    path = tmp_path / "e.sqlite3"
    first = EventStore(path)
    ids = [first.append("tick", {"n": n}).id for n in range(3)]
    first.close()
    second = EventStore(path)
    assert second.append("tick", {"n": 3}).id == ids[-1] + 1
    assert [e.fields["n"] for e in second.fetch(0)] == [0, 1, 2, 3]
    second.close()


def test_scoped_fetch_includes_global_events(store):
    store.append("new_block", {"height": 1})
    store.append("new_payment", {"a": 1}, wallet="w1")
    store.append("new_payment", {"a": 2}, wallet="w2")
    assert [e.name for e in store.fetch(0, ["w1"])] == ["new_block", "new_payment"]
    assert [e.wallet for e in store.fetch(0)] == [None, "w1", "w2"]
    assert store.fetch(0, []) == store.fetch(0, [])[:1]  # only the global one


def test_also_commits_with_the_event_or_not_at_all(store):
    store.append("a", {}, "w", also=lambda db: db.execute("INSERT INTO reported VALUES ('x')"))
    assert store.db.execute("SELECT key FROM reported").fetchall() == [("x",)]

    def fails(db):
        db.execute("INSERT INTO reported VALUES ('y')")
        raise RuntimeError("crash between event and bookkeeping")

    with pytest.raises(RuntimeError):
        store.append("b", {}, "w", also=fails)
    assert [e.name for e in store.fetch(0)] == ["a"]
    assert store.db.execute("SELECT key FROM reported").fetchall() == [("x",)]


def test_updates_cursor_per_wallet(store):
    for n in range(3):
        store.append("tick", {"n": n}, "w")
    assert len(store.updates_for("w")) == 3
    assert store.updates_for("w") == []
    store.append("tick", {"n": 3}, "w")
    assert [e.fields["n"] for e in store.updates_for("w")] == [3]
    assert [e.fields["n"] for e in store.updates_for("w", since=1)] == [1, 2, 3]


def test_retention_by_count_keeps_ids_unique(tmp_path):
    events = EventStore(tmp_path / "r.sqlite3", retention_count=2)
    ids = [events.append("t", {}).id for _ in range(5)]
    events.prune()
    assert [e.id for e in events.fetch(0)] == ids[-2:]
    assert events.append("t", {}).id == ids[-1] + 1
    events.close()


def old_updates_for(db, wallet: str, since: int | None = None) -> list[int]:
    """get_updates as the store answered it straight from SQL before it kept its poll state in memory."""
    after = since
    if since is None:
        row = db.execute("SELECT last_id FROM update_cursors WHERE wallet = ?", (wallet,)).fetchone()
        after = row[0] if row else 0
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM events WHERE id > ? AND (wallet IS NULL OR wallet = ?) ORDER BY id", (after, wallet)
        )
    ]
    if ids and since is None:
        db.execute(
            "INSERT INTO update_cursors (wallet, last_id) VALUES (?, ?) "
            "ON CONFLICT (wallet) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
            (wallet, ids[-1]),
        )
    return ids


def test_polls_answer_as_the_database_did_across_evictions_and_reopening(tmp_path, monkeypatch):
    import random
    import sqlite3

    import daemons.events

    monkeypatch.setattr(daemons.events, "KNOWN_WALLETS", 2)  # 5 wallets: their poll state is dropped and read again
    rng = random.Random(18)
    path = tmp_path / "e.sqlite3"
    store = EventStore(path)
    reference = sqlite3.connect(str(tmp_path / "reference.sqlite3"), isolation_level=None)
    reference.executescript(daemons.events.SCHEMA)
    wallets = [f"w{n}" for n in range(5)]
    for step in range(600):
        action = rng.random()
        wallet = rng.choice(wallets)
        if action < 0.35:
            scope = None if rng.random() < 0.2 else wallet
            event_id = store.append("tick", {"step": step}, scope).id
            reference.execute(
                "INSERT INTO events (id, wallet, name, payload, created) VALUES (?, ?, 'tick', '{}', 0)",
                (event_id, scope),
            )
        elif action < 0.45:
            since = rng.randrange(0, store.last_id() + 1)
            assert [e.id for e in store.updates_for(wallet, since)] == old_updates_for(reference, wallet, since)
        elif action < 0.47:
            store.close()  # a restart: the memory is rebuilt from the database
            store = EventStore(path)
        else:
            assert [e.id for e in store.updates_for(wallet)] == old_updates_for(reference, wallet), step
    store.close()
    reference.close()


def test_a_poll_with_nothing_new_reads_nothing_from_the_database(store):
    store.append("tick", {}, "w")
    store.append("tick", {}, None)
    assert len(store.updates_for("w")) == 2
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    assert store.updates_for("w") == [] and store.updates_for("w", since=2) == []
    store.append("tick", {}, "other")  # another wallet's event is no news either
    statements.clear()
    assert store.updates_for("w") == []
    assert statements == []
    store.append("tick", {}, "w")
    assert [e.id for e in store.updates_for("w")] == [4]
    assert [e.id for e in store.updates_for("w", since=0)] == [1, 2, 4]
