"""Memory per tracked user: serialized state, and resident memory as replay and the worker
hold N users, for N up to a million.

The users are copies, each under its own name, of one person's state after a simulated
week (``bench_restart.template_states``, about what a real one weighs), in teams of 50.
Each holding is measured in a fresh process: its RSS once the N users are held, less
its RSS before, over N (teams' states included):

- ``replay``: ``score_stream``'s :class:`~tokenradar.detectors.state.HeldStates` (the
  users scored last decoded, the others as bytes), every user scored once;
- ``replay-all-decoded``: a dict of every user's decoded state (replay before HeldStates);
- ``worker``: the worker's table (a dict of stored bytes, as Faust's memory store keeps
  it) and its :class:`~tokenradar.streams.batch.LiveStates`, every user stored once;
- ``worker-all-decoded``: the same, with every user's decoded state kept (before).

With ``--worker-process``, a worker process on a broker (``TOKENRADAR_BROKER``, else
Docker, else embedded Tansu) instead: its RSS ready with an empty table (the base); then
a worker on a changelog of N users' states (as ``bench_restart.py`` writes it), its RSS
ready (every user recovered, as bytes) and once it has scored one more event of each user.

Run (the all-decoded holdings need ~14 KB a user: leave them out at a million)::

    .venv/bin/python bench/bench_user_memory.py --users 100000 \
        --holdings replay replay-all-decoded worker worker-all-decoded
    .venv/bin/python bench/bench_user_memory.py --users 1000000 --holdings replay worker
    .venv/bin/python bench/bench_user_memory.py --users 100000 --worker-process
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench_restart import PARTITIONS, SESSION_TIMEOUT, TEAM_SIZE, template_states, write_changelog

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.detectors.engine import detector_slot
from tokenradar.detectors.state import HeldStates
from tokenradar.lab.brokers import kafka_broker
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.batch import LiveStates, team_state_key, user_state_key
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import produce_events

HOLDINGS = ("replay", "replay-all-decoded", "worker", "worker-all-decoded")


def resident_bytes() -> int:
    """This process's resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status: Linux only")


def decoded_copy(raw: bytes, engine: ScoringEngine, name: str, team: str) -> UserState:
    """A user as scoring leaves it: decoded, every detector's slot restored."""
    state = UserState.from_bytes(raw)
    state.user_id, state.team = name, team
    for detector in engine.detectors:
        if detector.name in state.slots:
            detector_slot(state, detector)
    return state


def hold(holding: str, users: int) -> dict[str, Any]:
    """Hold ``users`` users as ``holding`` does; RSS and stored bytes per user."""
    engine = ScoringEngine(DetectorConfig())
    template, team_template, _ = template_states()
    raw_user, raw_team = template.to_bytes(), team_template.to_bytes()
    kept: list[Any] = []
    gc.collect()
    before = resident_bytes()
    if holding.startswith("replay"):
        held: HeldStates[tuple[str, str]] | dict[tuple[str, str], UserState] = (
            HeldStates() if holding == "replay" else {})
        teams: dict[str, TeamState] = {}
        for number in range(users):
            name, route = f"user-{number:07d}", f"team-{number // TEAM_SIZE:05d}"
            if route not in teams:
                teams[route] = TeamState.from_bytes(raw_team)
            held[route, name] = decoded_copy(raw_user, engine, name, route)
        kept += [held, teams]
    else:
        table: dict[bytes, bytes] = {}
        live = LiveStates() if holding == "worker" else LiveStates(live=users * 2)
        for number in range(users):
            name, route = f"user-{number:07d}", f"team-{number // TEAM_SIZE:05d}"
            if number % TEAM_SIZE == 0:
                table |= live.take_changed()  # written, as the worker does each second
                team = TeamState.from_bytes(raw_team)
                team.team = route
                live.change(team_state_key(route), team)
            live.change(user_state_key(route, name), decoded_copy(raw_user, engine, name, route))
        table |= live.take_changed()
        kept += [table, live]
    gc.collect()
    after = resident_bytes()
    return {"holding": holding, "users": users, "rss_per_user": (after - before) / users,
            "rss_mib": after / 2**20, "stored_per_user": len(raw_user)}


def worker_rss(url: str, users: int, folder: Path) -> list[float]:
    """RSS in MiB of a worker on a changelog of ``users`` users' states: once ready (its
    table recovered) and, with users, once it has scored one more event of each."""
    tag = uuid.uuid4().hex[:8]
    names = {"broker": url, "input-topic": f"memory-{tag}", "group-id": f"memory-{tag}",
             "alerts-topic": f"alerts-{tag}", "dlq-topic": f"dlq-{tag}",
             "session-timeout-seconds": str(SESSION_TIMEOUT), "data-dir": str(folder / tag)}
    create_topics(url, [names["input-topic"]], PARTITIONS)
    if users:
        write_changelog(url, f"{names['group-id']}-user-state-changelog", users)
    log = folder / f"worker-{tag}.log"
    with WorkerProcess(names, log) as worker:
        wait_until(lambda: "tokenradar worker ready" in log.read_text(), 1800, worker.describe)
        rss = [worker.metrics()[("process_resident_memory_bytes", ())] / 2**20]
        if users:
            _, _, last = template_states()
            at = datetime.fromisoformat(str(last["timestamp"])) + timedelta(minutes=10)
            sent = produce_events(bootstrap_of(url), names["input-topic"], (
                last | {"event_id": f"more-{number}",  # spread over an hour, in time order
                        "timestamp": (at + timedelta(seconds=3600 * number / users)).isoformat(),
                        "user_id": f"user-{number:06d}", "team": f"team-{number // TEAM_SIZE:04d}"}
                for number in range(users)))
            wait_until(lambda: worker.scored() >= sent, 3600, worker.describe)
            rss.append(worker.metrics()[("process_resident_memory_bytes", ())] / 2**20)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000])
    parser.add_argument("--holdings", nargs="+", choices=HOLDINGS, default=["replay", "worker"])
    parser.add_argument("--worker-process", action="store_true",
                        help="measure a worker process on a broker instead")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_process:
        with kafka_broker() as url, tempfile.TemporaryDirectory() as folder:
            (base,) = worker_rss(url, 0, Path(folder))
            for users in args.users:
                ready, scored = worker_rss(url, users, Path(folder))
                print(f"{users:>9,} users, worker process: RSS {base:,.0f} MiB empty; "
                      f"{ready:,.0f} MiB, {(ready - base) * 2**20 / users:,.0f} B/user, with "
                      f"their states recovered; {scored:,.0f} MiB, "
                      f"{(scored - base) * 2**20 / users:,.0f} B/user, after one event each",
                      flush=True)
        return
    if args.one:  # a child: one holding, one size
        print(json.dumps(hold(args.holdings[0], args.users[0])))
        return
    for users in args.users:
        for holding in args.holdings:
            child = subprocess.run(
                [sys.executable, __file__, "--one", "--users", str(users), "--holdings", holding],
                check=True, capture_output=True, text=True)
            row = json.loads(child.stdout)
            print(f"{users:>9,} users, {holding:<20} stored {row['stored_per_user']:>6,} B/user, "
                  f"resident {row['rss_per_user']:>7,.0f} B/user "
                  f"(process {row['rss_mib']:,.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
