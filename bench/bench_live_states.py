"""CPU per event with more users active than ``LIVE_STATES`` keeps decoded: what holding
fewer users decoded (less memory per user, ``bench_user_memory.py``) costs.

``--users`` users' states (copies of ``bench_restart.template_states``' person after a
week, in teams of 50) are held by a :class:`~tokenradar.detectors.state.HeldStates` of
each ``--live`` size, then each user is scored ``--rounds`` more events in turn (the
worst order for a cache of recent users: with more users than ``live``, every event
decodes its user's state and encodes the one put away). Prints the process CPU per event
scored, each ``--live`` in its own process, the sizes interleaved ``--repeat`` times::

    .venv/bin/python bench/bench_live_states.py --users 10000 --live 10240 7680
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta

from bench_restart import TEAM_SIZE, template_states

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.detectors.state import HeldStates
from tokenradar.schemas import DetectorConfig, TokenUsageEvent


def cpu_per_event(live: int, users: int, rounds: int) -> float:
    """Microseconds of CPU per event, ``users`` users scored in turn ``rounds`` times."""
    engine = ScoringEngine(DetectorConfig())
    template, team_template, last = template_states()
    held = HeldStates[str](live)
    teams: dict[str, TeamState] = {}
    for number in range(users):
        template.user_id, template.team = f"user-{number:06d}", f"team-{number // TEAM_SIZE:04d}"
        held[template.user_id] = UserState.from_bytes(template.to_bytes())
        teams.setdefault(template.team, TeamState.from_bytes(team_template.to_bytes()))
    at = datetime.fromisoformat(str(last["timestamp"])) + timedelta(minutes=10)
    events = [TokenUsageEvent.model_validate(last | {
        "event_id": f"more-{round_}-{number}", "user_id": f"user-{number:06d}",
        "team": f"team-{number // TEAM_SIZE:04d}",
        "timestamp": (at + timedelta(seconds=3600 * (round_ + number / users))).isoformat()})
        for round_ in range(rounds) for number in range(users)]
    start = time.process_time()
    for event in events:
        state = held.get(event.user_id)
        assert state is not None and event.team is not None
        engine.score_event(state, event, event.timestamp, team_state=teams[event.team])
    return (time.process_time() - start) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--live", type=int, nargs="+", default=[10_240, 7_680])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one size
        print(json.dumps(cpu_per_event(args.live[0], args.users, args.rounds)))
        return
    for _ in range(args.repeat):
        for live in args.live:
            child = subprocess.run(
                [sys.executable, __file__, "--one", "--users", str(args.users), "--live",
                 str(live), "--rounds", str(args.rounds)],
                check=True, capture_output=True, text=True)
            print(f"{args.users:,} users in turn, {live:>6,} decoded: "
                  f"{json.loads(child.stdout):,.0f} us CPU an event", flush=True)


if __name__ == "__main__":
    main()
