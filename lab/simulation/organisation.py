"""The organisation: teams and people drawn from the seed, and the benign changes they go
through (vacations, new joiners, model adoptions, a team told to adopt AI).

Teams mostly sit in one time zone and differ in culture (how much they use AI); people
differ by orders of magnitude. Benign changes carry a label with ``benign: true``, so an
evaluation can count alerts on them as false alerts; a team's adoption push carries a
``population_shift`` label, to be reported once for the team.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tokenradar.lab.simulation import randomised
from tokenradar.lab.simulation.incidents import plan_incidents
from tokenradar.lab.simulation.people import Person, UsageChange
from tokenradar.lab.simulation.service_accounts import SERVICE_TEAM, CiReviewBot, NightlyEval
from tokenradar.lab.simulation.spec import Label, SimulationSpec
from tokenradar.lab.simulation.usage import DAY, EVERYDAY_MODELS, EVERYDAY_WEIGHTS, HOUR, iso
from tokenradar.schemas.kinds import POPULATION_SHIFT

TEAM_NAMES = ("platform", "payments", "search", "mobile", "data-eng", "ml-research", "infra",
              "security", "growth", "web", "billing", "identity", "analytics", "devex",
              "support-tools")
TIMEZONES = (-8, -5, 0, 1, 2, 5.5, 8, 9)
"""UTC offsets, hours."""


class Actor(Protocol):
    """Anything that makes requests: a person, a service account, an incident."""

    def events_for_day(self, day: int) -> Iterable[tuple[int, dict[str, object]]]: ...


@dataclass
class Organisation:
    people: list[Person]
    actors: list[Actor]
    """Everything that makes requests, in a fixed order (determinism depends on it)."""
    labels: list[Label]


class AdoptionRamp(UsageChange):
    """A team told to adopt AI: requests (and a little size) ramp up together, then stay."""

    def __init__(self, start: float, end: float, requests: float, tokens: float) -> None:
        self.start, self.end, self.requests, self.tokens = start, end, requests, tokens

    def _progress(self, at: float) -> float:
        return min(1.0, max(0.0, (at - self.start) / (self.end - self.start)))

    def request_factor(self, at: float) -> float:
        return 1.0 + (self.requests - 1.0) * self._progress(at)

    def input_factor(self, at: float) -> float:
        return 1.0 + (self.tokens - 1.0) * self._progress(at)

    output_factor = input_factor


def build_organisation(spec: SimulationSpec) -> Organisation:
    """Everyone and everything in the simulated organisation, with all labels."""
    rng = random.Random(f"{spec.seed}/organisation")
    if spec.knobs is not None:
        people, teams = randomised.draw_people(spec, spec.knobs, rng)
    else:
        teams = [TEAM_NAMES[i] if i < len(TEAM_NAMES) else f"team-{i}"
                 for i in range(spec.teams)]
        zone = {team: rng.choice(TIMEZONES) for team in teams}
        culture = {team: rng.lognormvariate(0, 0.3) for team in teams}
        sizes = [rng.lognormvariate(0, 0.4) for _ in teams]
        people = [_new_person(spec, rng, index, rng.choices(teams, sizes)[0], zone, culture)
                  for index in range(spec.users)]
    benign: list[Label] = []
    shifted = _plan_population_shifts(spec, rng, people, teams, benign)
    free = [p for p in people if p.team not in shifted]
    rng.shuffle(free)
    _plan_vacations(spec, rng, free, benign)
    _plan_new_joiners(spec, rng, free, benign)
    _plan_adoptions(spec, rng, free, benign)
    incidents, traffic = plan_incidents(spec, rng, free)
    actors: list[Actor] = list(people)
    if spec.knobs is not None:
        randomised.plan_on_call(spec, spec.knobs, rng, people, benign)
        for machine in randomised.machine_accounts(spec, spec.knobs, rng, teams,
                                                   {p.user_id for p in people}):
            actors.append(machine)
            benign.append(Label("", "service_account", machine.user_id, machine.team,
                                iso(spec.origin), iso(spec.end), benign=True,
                                params=(("rhythm", machine.rhythm),)))
    if spec.service_accounts:
        weekday = spec.start.weekday()
        for account in (NightlyEval(spec.seed, spec.origin, spec.end),
                        CiReviewBot(spec.seed, spec.origin, spec.end, weekday)):
            actors.append(account)
            benign.append(Label("", "allowlisted", account.user_id, SERVICE_TEAM,
                                iso(spec.origin), iso(spec.end), benign=True))
    actors.extend(traffic)
    # Population shifts are expected team alerts, not benign context: named for what they are.
    shifts = [label for label in benign if label.kind == POPULATION_SHIFT.name]
    context = [label for label in benign if label.kind != POPULATION_SHIFT.name]
    numbered = [Label(**{**vars(label), "incident_id": f"{prefix}-{n:03d}"})
                for prefix, group in (("shift", shifts), ("benign", context))
                for n, label in enumerate(group, 1)]
    labels = sorted(incidents + numbered, key=lambda label: (label.start, label.incident_id))
    return Organisation(people, actors, labels)


def _new_person(spec: SimulationSpec, rng: random.Random, index: int, team: str,
                zone: dict[str, float], culture: dict[str, float]) -> Person:
    night_owl = rng.random() < 0.04
    clients = tuple(rng.sample(("ide", "chat", "cli"), rng.randint(1, 3)))
    models = rng.choices(EVERYDAY_MODELS, EVERYDAY_WEIGHTS, k=3)
    return Person(
        user_id=f"user-{index:04d}",
        team=team,
        utc_offset=zone[team] if rng.random() < 0.7 else rng.choice(TIMEZONES),
        start_hour=rng.uniform(13, 15) if night_owl else rng.uniform(7, 10),
        work_hours=rng.uniform(10, 12) if night_owl else rng.uniform(7, 10),
        night_owl=night_owl,
        weekend_worker=rng.random() < 0.1,
        # Heavy-tailed: some people legitimately use 100x more than others.
        requests_per_hour=min(40.0, max(0.1, rng.lognormvariate(math.log(2.0), 0.9)
                                        * culture[team])),
        session_length=rng.uniform(4, 12),
        log_input=rng.gauss(math.log(2500), 0.8),
        log_output=rng.gauss(math.log(450), 0.5),
        main_model=models[0],
        other_models=tuple(m for m in models[1:] if m != models[0]),
        clients=clients,
        client_weights=tuple(sorted((rng.random() for _ in clients), reverse=True)),
        agent_share=rng.uniform(0.05, 0.2) if rng.random() < 0.1 else 0.0,
        seed=spec.seed,
        origin=spec.origin,
        origin_weekday=spec.start.weekday(),
        run_end=spec.end,
    )


def _plan_population_shifts(spec: SimulationSpec, rng: random.Random, people: list[Person],
                            teams: list[str], labels: list[Label]) -> set[str]:
    members = {team: [p for p in people if p.team == team] for team in teams}
    sizable = [team for team in teams if len(members[team]) >= 4]
    shifted: set[str] = set()
    for team in rng.sample(sizable, min(spec.shifted_teams, len(sizable))):
        ramp_days = rng.randint(*spec.ranges.shift_ramp_days)
        latest = spec.days - ramp_days - 3
        if latest < spec.warmup_days:
            break
        start = spec.origin + rng.randint(spec.warmup_days, latest) * DAY
        end = start + ramp_days * DAY
        if spec.ranges.shift_factor is None:
            requests, tokens = rng.uniform(2.0, 3.0), rng.uniform(1.0, 1.2)
        else:  # a total factor, split between more requests and larger ones
            factor, share = rng.uniform(*spec.ranges.shift_factor), rng.uniform(0.4, 1.0)
            requests, tokens = factor ** share, factor ** (1 - share)
        for person in members[team]:
            person.changes.append(AdoptionRamp(start, end, requests, tokens))
        shifted.add(team)
        # The team stays at its new level: like a creep, the change lasts to the run's
        # end, so a shift reported after its ramp is late (its delay says so), not false.
        labels.append(Label("", POPULATION_SHIFT.name, f"team:{team}", team, iso(start),
                            iso(spec.end), benign=False,
                            members=tuple(p.user_id for p in members[team]),
                            params=(("ramp_days", ramp_days),
                                    ("requests_factor", round(requests, 4)),
                                    ("tokens_factor", round(tokens, 4)))))
    return shifted


def _take(free: list[Person], share: float, users: int, fits: bool = True,
          busy: bool = False) -> list[Person]:
    count = min(round(share * users), len(free) // 4) if fits else 0
    taken = [p for p in free if not p.night_owl
             and (not busy or p.sessions_per_day() >= 3)][:count]
    for person in taken:
        free.remove(person)
    return taken


def _plan_vacations(spec: SimulationSpec, rng: random.Random, free: list[Person],
                    labels: list[Label]) -> None:
    latest = spec.days - 14 - 3
    # Away two weeks, mostly Monday to Monday; only people with a level to come back to.
    for person in _take(free, spec.vacation_share, spec.users, latest >= 5, busy=True):
        days = range(5, latest + 1)
        mondays = [d for d in days if person.weekday(d) == 0]
        first = rng.choice(mondays if mondays and rng.random() < 0.7 else
                           [d for d in days if person.weekday(d) < 5] or list(days))
        back = first + 14
        person.away = (first, back)
        start = person.local_midnight(back)
        labels.append(Label("", "vacation_return", person.user_id, person.team, iso(start),
                            iso(start + 3 * DAY), benign=True,
                            params=(("away_from", iso(person.local_midnight(first))),)))


def _plan_new_joiners(spec: SimulationSpec, rng: random.Random, free: list[Person],
                      labels: list[Label]) -> None:
    days = range(spec.warmup_days, spec.days - 4)
    for person in _take(free, spec.new_joiner_share, spec.users, len(days) > 0):
        weekdays = [d for d in days if person.weekday(d) < 5] or list(days)
        person.joined_day = rng.choice(weekdays)
        first = round((person.work_window(person.joined_day)[0] + 0.25 * HOUR) * 1000) / 1000
        person.first_event = first
        labels.append(Label("", "new_joiner", person.user_id, person.team, iso(first),
                            iso(first + 3 * DAY), benign=True))


def _plan_adoptions(spec: SimulationSpec, rng: random.Random, free: list[Person],
                    labels: list[Label]) -> None:
    days = range(spec.warmup_days, spec.days - 3)
    for person in _take(free, spec.adoption_share, spec.users, len(days) > 0):
        at = person.work_window(rng.choice(days))[0]
        model = rng.choice([m for m in EVERYDAY_MODELS if m != person.main_model])
        person.adoption = (at, model)
        labels.append(Label("", "model_adoption", person.user_id, person.team, iso(at),
                            iso(at + 3 * DAY), benign=True, params=(("model", model),)))
