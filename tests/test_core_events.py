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
