"""A restarted worker resumes every user's baseline from the table's changelog.

The duplicate of each user's last baseline event is the precise probe: it is
recognised as a duplicate only if the newest state of that user was restored,
not an older one. The spike after it needs no warm-up if any baseline came back.
"""

from __future__ import annotations

import pytest
from worker_harness import encode, huge_request, producer, read_topic, steady_usage

from tokenradar.lab.process import wait_until

pytestmark = pytest.mark.integration

USERS = [f"user-{i}" for i in range(8)]  # several users a partition: multi-record batches


def test_restarted_worker_resumes_baselines_from_changelog(broker_url, topics, start_worker):
    send = producer(broker_url)
    baselines = {user: steady_usage(user) for user in USERS}
    for events in baselines.values():
        for event in events:
            send.send(topics.input, key=event["user_id"].encode(), value=encode(event))
    send.flush()

    first = start_worker(topics)
    first.wait_for_scored(len(USERS) * 60)  # sent user after user: many of them late
    first.stop()  # SIGTERM by PID: Faust flushes the changelog and commits offsets

    for user, events in baselines.items():
        send.send(topics.input, key=user.encode(), value=encode(events[-1]))
        send.send(topics.input, key=user.encode(), value=encode(huge_request(user)))
    send.flush()
    send.close()

    second = start_worker(topics)
    second.wait_for_scored(len(USERS))
    second.wait_for_events("duplicate", len(USERS))
    alerts = read_topic(broker_url, topics.alerts, count=len(USERS))

    assert {record.key.decode() for record in alerts} == set(USERS), "baselines lost"
    # Only the spikes are scored: every probe was known, so each user's newest state
    # came back. (A restarted worker may be handed some events a second time, as
    # at-least-once delivery allows; they are dropped as duplicates too. An event
    # never handed over at all is the failure this test exists to catch: see
    # hold_input_until_seeked in streams/app.py.)
    assert second.scored() == len(USERS), second.describe()
    assert second.events("duplicate") >= len(USERS), second.describe()


def test_events_held_for_reordering_are_scored_by_the_next_worker(
        broker_url, topics, start_worker):
    """Held events live in the changelog-backed table: offsets committed past them lose
    nothing when the worker stops before scoring them."""
    events = sorted((event for user in USERS for event in steady_usage(user)),
                    key=lambda event: event["timestamp"])
    events += [huge_request(user) for user in USERS]  # the last, so still held at the stop
    send = producer(broker_url)
    for event in events:
        send.send(topics.input, key=event["team"].encode(), value=encode(event))
    send.flush()
    send.close()

    first = start_worker(topics, quiet_flush_seconds=3600)  # never quiet long enough
    wait_until(lambda: first.scored() and first.held() and
               first.scored() + first.held() >= len(events), 60, first.describe)
    scored_first, held = first.scored(), first.held()
    first.stop()
    assert held >= len(USERS), first.describe()
    assert first.events("late") == 0

    second = start_worker(topics)
    second.wait_for_scored(held)
    alerts = read_topic(broker_url, topics.alerts, count=len(USERS))
    assert scored_first + second.scored() == len(events), second.describe()
    assert {record.key.decode() for record in alerts} == set(USERS)
