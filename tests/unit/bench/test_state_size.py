"""bench/state_size.py's breakdown: each part's bytes add up to the stored state's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import state_size  # noqa: E402

from tokenradar.detectors import UserState  # noqa: E402
from tokenradar.detectors.gaming import GamingSlot  # noqa: E402


def test_the_breakdown_adds_up_to_the_stored_bytes() -> None:
    state = UserState(user_id="ana", team="core", recent_ids=["e1", "e2"],
                      slots={"gaming": GamingSlot(run=[3, 4])})
    state.context.utc_offset_hours = -5
    parts = dict(state_size.breakdown([state, UserState(user_id="bob")], depth=3))
    stored = [len(state.to_bytes()), len(UserState(user_id="bob").to_bytes())]
    version_and_header = 2  # [5, record]: an array header and the version
    assert parts["UserState"] == sum(stored) / 2 - version_and_header
    fields = [path for path in parts if path.count(".") == 1 and "[" not in path]
    assert fields[:3] == ["UserState.user_id", "UserState.team", "UserState.events"]
    assert sum(parts[path] for path in fields) == parts["UserState"] - 1  # its header
    alone = dict(state_size.breakdown([state], depth=3))
    gaming = [path for path in alone if path.startswith("UserState.slots[gaming].")]
    assert len(gaming) == len(GamingSlot.__struct_fields__)
    assert sum(alone[path] for path in gaming) == alone["UserState.slots[gaming]"] - 1
