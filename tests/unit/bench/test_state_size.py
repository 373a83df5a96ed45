"""bench/state_size.py's breakdown: each part's bytes add up to the stored state's, and
its decoded bytes to what the decoded state weighs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import state_size  # noqa: E402

from tokenradar.detectors import UserState  # noqa: E402
from tokenradar.detectors.gaming import GamingSlot  # noqa: E402


def _stored(states: list[UserState]) -> dict[str, float]:
    return {path: stored for path, stored, _ in state_size.breakdown(states, depth=3)}


def test_the_breakdown_adds_up_to_the_stored_bytes() -> None:
    state = UserState(user_id="ana", team="core", recent_ids=["e1", "e2"],
                      slots={"gaming": GamingSlot(run=[3, 4])})
    state.context.utc_offset_hours = -5
    parts = _stored([state, UserState(user_id="bob")])
    stored = [len(state.to_bytes()), len(UserState(user_id="bob").to_bytes())]
    version_and_header = 2  # [5, record]: an array header and the version
    assert parts["UserState"] == sum(stored) / 2 - version_and_header
    fields = [path for path in parts if path.count(".") == 1 and "[" not in path]
    assert fields[:3] == ["UserState.user_id", "UserState.team", "UserState.events"]
    assert sum(parts[path] for path in fields) == parts["UserState"] - 1  # its header
    alone = _stored([state])
    gaming = [path for path in alone if path.startswith("UserState.slots[gaming].")]
    assert len(gaming) == len(GamingSlot.__struct_fields__)
    assert sum(alone[path] for path in gaming) == alone["UserState.slots[gaming]"] - 1


def test_the_decoded_bytes_of_the_parts_add_up_to_the_whole_but_its_own_object() -> None:
    state = UserState(user_id="ana", recent_ids=["e1" * 20, "e2" * 20])
    decoded = {path: size for path, _, size in state_size.breakdown([state], depth=1)}
    fields = [path for path in decoded if path != "UserState"]
    assert decoded["UserState.recent_ids"] == sys.getsizeof(state.recent_ids) + sum(
        sys.getsizeof(event_id) for event_id in state.recent_ids)
    assert decoded["UserState"] == sys.getsizeof(state) + sum(decoded[p] for p in fields)
