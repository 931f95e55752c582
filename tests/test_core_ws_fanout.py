"""The hub's scope index (issue 18): an event visits only the sockets it concerns, and no socket is missed."""

from __future__ import annotations

import json

from daemons.events import EventStore
from daemons.websocket import Hub, WSClient


def pending_ids(client: WSClient) -> list[int]:
    return [event.id for event in client.pending]


def test_events_reach_exactly_the_sockets_they_concern_as_scopes_change(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    hub = Hub(store, "BTC", lambda identity: identity.key)
    unscoped, alice, both = (WSClient(None, hub, cursor=0) for _ in range(3))
    alice.rescope({"alice"})  # scoped before it joins the hub, as a resumed socket is
    for client in (unscoped, alice, both):
        hub.add(client)
    both.rescope({"alice", "bob"})
    events = [store.append("new_transaction", {}, wallet) for wallet in ("alice", "bob", None, "carol")]
    for event in events:
        hub.publish(event)
    ids = [event.id for event in events]
    assert pending_ids(unscoped) == ids
    assert pending_ids(alice) == [ids[0], ids[2]]
    assert pending_ids(both) == ids[:3]
    # Moving a socket's scope moves it in the index; a closed socket leaves no trace.
    alice.rescope({"carol"})
    hub.remove(unscoped)
    hub.remove(both)
    assert hub.by_wallet == {"carol": {alice}} and hub.unscoped == set() and hub.clients == {alice}
    later = store.append("new_transaction", {}, "carol")
    hub.publish(later)
    hub.publish(store.append("new_transaction", {}, "alice"))
    assert pending_ids(alice)[-1] == later.id
    hub.remove(alice)
    assert hub.by_wallet == {} and hub.clients == set()
    store.close()


def test_a_live_event_is_encoded_once_for_every_socket(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    hub = Hub(store, "BTC", lambda identity: identity.key)
    event = store.append("new_block", {"height": 7})
    first = hub.message([event])
    assert first == hub.message([event]) and first is hub.message([event])
    message = {"updates": [{"height": 7, "event": "new_block", "id": event.id}], "wallet": None, "currency": "BTC"}
    assert json.loads(first) == message
    store.close()
