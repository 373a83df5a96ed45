"""How many team shifts any test could report in time: a bound, not the detector's figure.

For each shifted team of a simulated organisation, the best z any test could reach on the
member-days judged by the deadline (the ramp's end plus 3 working days), knowing what no
detector knows: each member's exact usual level, the members' spread and the ramp's
shape and size (the Neyman-Pearson test of "the team rose as drawn" against "it did
not"). Its expected z is sqrt(sum over member-days of rise' C^-1 rise), with ``rise`` the
day's share of the drawn rise in log10 requests and tokens and ``C`` their covariance
around each member's own mean (from the unshifted teams); it reaches a bar b with
probability Phi(z - b). A member-day is a working day of the member's local time, with
fewer than MACHINE_HOURS active hours, judged at CLOSE_HOUR local of their next working
day, as :mod:`tokenradar.detectors.team` judges it; a member counts once they have
MIN_LEVEL_DAYS working days before the shift's start (as few as the detector needs to
know a usual level; the bound knows it exactly from them).

    .venv/bin/python bench/shift_bound.py --seeds 1 2 4 7 10 11   # full size
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from statistics import NormalDist

from tokenradar.detectors.team import CLOSE_HOUR, MACHINE_HOURS, MIN_LEVEL_DAYS
from tokenradar.lab.robustness import shift_deadline
from tokenradar.lab.simulation import build_organisation, random_organisation
from tokenradar.lab.simulation.timeline import iter_events
from tokenradar.schemas.kinds import POPULATION_SHIFT

DAY, HOUR = 86_400.0, 3_600.0


def member_days(seed: int, size: dict[str, int]
                ) -> tuple[dict[tuple[str, int], list[float]], dict[str, tuple[str, float]], float]:
    """Each person's (user, local day) -> [requests, tokens, active hours]; their team and
    UTC offset; the run's origin."""
    spec = random_organisation(seed, **size)
    people = {person.user_id: person for person in build_organisation(spec).people}
    days: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    hours: dict[tuple[str, int], set[int]] = defaultdict(set)
    for event in iter_events(spec):
        person = people.get(str(event["user_id"]))
        if person is None:  # a service account
            continue
        at = datetime.fromisoformat(str(event["timestamp"])).timestamp()
        key = (person.user_id, math.floor((at + person.utc_offset * HOUR - spec.origin) / DAY))
        day = days[key]
        day[0] += 1
        day[1] += float(str(event["input_tokens"])) + float(str(event["output_tokens"]))
        hours[key].add(int(at // HOUR))
    for key, day in days.items():
        day[2] = len(hours[key])
    meta = {user: (person.team, person.utc_offset) for user, person in people.items()}
    return days, meta, spec.origin


def bound(seed: int, size: dict[str, int], bars: tuple[float, ...]) -> list[dict[str, object]]:
    """One row per shifted team: its member-days by the deadline, the best expected z and
    the probability of reaching each bar."""
    spec = random_organisation(seed, **size)
    shifts = {label.team: label for label in build_organisation(spec).labels
              if label.kind == POPULATION_SHIFT.name}
    days, meta, origin = member_days(seed, size)
    weekday = datetime.fromtimestamp(origin, UTC).weekday()

    def working(day: int) -> bool:
        return (weekday + day) % 7 < 5

    values: dict[str, dict[str, list[tuple[int, float, float]]]] = defaultdict(
        lambda: defaultdict(list))  # team -> user -> (day, log10 requests, log10 tokens)
    for (user, day), (requests, tokens, active) in days.items():
        if working(day) and active < MACHINE_HOURS:
            values[meta[user][0]][user].append(
                (day, math.log10(requests), math.log10(tokens + 1.0)))
    residuals = [(r - statistics.fmean(v[1] for v in member),
                  t - statistics.fmean(v[2] for v in member))
                 for team, users in values.items() if team not in shifts
                 for member in users.values() if len(member) >= MIN_LEVEL_DAYS
                 for _, r, t in member]
    srr, stt = (statistics.fmean(x[i] ** 2 for x in residuals) for i in (0, 1))
    srt = statistics.fmean(r * t for r, t in residuals)
    determinant = srr * stt - srt**2
    rows = []
    for team, label in shifts.items():
        start = datetime.fromisoformat(label.start)
        ramp = float(dict(label.params)["ramp_days"])
        requests = math.log10(float(dict(label.params)["requests_factor"]))
        tokens = requests + math.log10(float(dict(label.params)["tokens_factor"]))
        deadline = shift_deadline(start, ramp).timestamp()
        first = (start.timestamp() - origin) / DAY
        z2, counted = 0.0, 0
        for user, member in values[team].items():
            if sum(day < first for day, _, _ in member) < MIN_LEVEL_DAYS:
                continue  # no usual level to judge them by
            offset = meta[user][1]
            for day, _, _ in member:
                after = day + 1
                while not working(after):
                    after += 1
                judged = origin + after * DAY - offset * HOUR + CLOSE_HOUR * HOUR
                if day < first or judged > deadline:
                    continue
                share = min(1.0, (day + 0.5 - first) / ramp)
                r, t = share * requests, share * tokens
                z2 += (r * r * stt - 2 * r * t * srt + t * t * srr) / determinant
                counted += 1
        z = math.sqrt(z2)
        rows.append({"seed": seed, "team": team, "members": len(label.members),
                     "ramp_days": ramp, "member_days": counted, "z": z,
                     **{f"p{bar}": 1.0 - NormalDist().cdf(bar - z) for bar in bars}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 7, 10, 11])
    parser.add_argument("--bars", type=float, nargs="+", default=[3.5, 2.5])
    args = parser.parse_args()
    size = {"users": 400, "teams": 25, "days": 28, "incidents_per_kind": 6}
    total: dict[str, float] = defaultdict(float)
    for seed in args.seeds:
        rows = bound(seed, size, tuple(args.bars))
        for row in rows:
            print(f"org {seed} {row['team']:12} {row['members']:3} members, ramp "
                  f"{row['ramp_days']:.0f} d, {row['member_days']:3} member-days by the "
                  f"deadline: best expected z {row['z']:.1f}; "
                  + ", ".join(f"P(z >= {bar}) {row[f'p{bar}']:.2f}" for bar in args.bars))
        found = {bar: sum(float(str(row[f"p{bar}"])) for row in rows) for bar in args.bars}
        print(f"org {seed}: {len(rows)} shifts, expected found in time "
              + ", ".join(f"{found[bar]:.1f} at z {bar}" for bar in args.bars))
        total["shifts"] += len(rows)
        for bar in args.bars:
            total[str(bar)] += found[bar]
    print(f"all: {total['shifts']:.0f} shifts, expected found in time "
          + ", ".join(f"{total[str(bar)]:.1f} at z {bar}" for bar in args.bars))


if __name__ == "__main__":
    main()
