"""A randomised organisation: people, teams and machine identities drawn from the
organisation's knobs (:class:`OrganisationKnobs`), for the robustness matrix.

Teams range from 3 to 200 people; people's volumes are log-normal with a Pareto tail;
some run agents, carry long conversations mostly read from cache, send documents now and
then, are on call for a week, or use a producer that omits ``session_id`` or
``prompt_fingerprint``. Machine identities have arbitrary names, run around the clock at
machine rhythm, and are labelled ``service_account`` (benign: alerts on them are false).
"""

from __future__ import annotations

import math
import random

from tokenradar.lab.simulation.knobs import OrganisationKnobs
from tokenradar.lab.simulation.people import Person
from tokenradar.lab.simulation.service_accounts import MachineAccount
from tokenradar.lab.simulation.spec import Label, SimulationSpec
from tokenradar.lab.simulation.traces import request_sizes
from tokenradar.lab.simulation.usage import DAY, EVERYDAY_MODELS, HOUR, iso

MAX_TEAM = 200
MIN_TEAM = 3
TEAM_WORDS = ("platform", "payments", "search", "mobile", "data", "ml", "infra", "security",
              "growth", "web", "billing", "identity", "analytics", "devex", "support",
              "core", "risk", "ads", "maps", "voice", "labs", "ops", "legal", "sales")
MACHINE_NAMES = ("eval-runner", "ci-review", "jenkins", "build-agent-{n}", "etl-nightly",
                 "docs-indexer", "triage-bot", "summariser", "{word}-pipeline", "svc-{word}",
                 "{word}.automation", "robot{n}", "user-9{n:03d}", "qa-{word}", "sync-{n}")
"""Patterns of machine identities: some look like people, few start with ``svc-``."""


def random_organisation(seed: int, users: int = 400, teams: int = 25, days: int = 28,
                        incidents_per_kind: int = 6) -> SimulationSpec:
    """The spec of randomised organisation ``seed``: every knob drawn from the seed.

    >>> random_organisation(3).knobs == random_organisation(3).knobs
    True
    """
    knobs = OrganisationKnobs.draw(seed)
    return SimulationSpec(users=users, teams=teams, days=days, seed=seed,
                          incidents_per_kind=incidents_per_kind,
                          shifted_teams=min(knobs.shifted_teams, max(1, teams // 4)),
                          vacation_share=knobs.vacation_share,
                          new_joiner_share=knobs.new_joiner_share,
                          adoption_share=knobs.adoption_share, service_accounts=False,
                          duplicate_share=knobs.duplicate_share, knobs=knobs)


def draw_people(spec: SimulationSpec, knobs: OrganisationKnobs, rng: random.Random
                ) -> tuple[list[Person], list[str]]:
    """The organisation's people, and its team names (every team has someone in it)."""
    names = [f"{TEAM_WORDS[i % len(TEAM_WORDS)]}-{i // len(TEAM_WORDS) + 1}"
             if i >= len(TEAM_WORDS) else TEAM_WORDS[i] for i in range(spec.teams)]
    sizes = team_sizes(spec.users, spec.teams, knobs.team_size_spread, rng)
    zone = {team: rng.choice(knobs.timezones) for team in names}
    culture = {team: rng.lognormvariate(0, 0.4) for team in names}
    team_of = [team for team, size in zip(names, sizes, strict=True) for _ in range(size)]
    rng.shuffle(team_of)
    people = [_person(spec, knobs, rng, index, team, zone, culture)
              for index, team in enumerate(team_of)]
    return people, [team for team, size in zip(names, sizes, strict=True) if size]


def team_sizes(users: int, teams: int, spread: float, rng: random.Random) -> list[int]:
    """Team sizes summing to ``users``: log-normal weights, each team between 3 and 200
    people when the organisation is large enough for that."""
    floor = MIN_TEAM if users >= MIN_TEAM * teams else 0
    cap = max(MAX_TEAM, -(-users // teams))
    weights = [rng.lognormvariate(0, spread) for _ in range(teams)]
    sizes = [floor] * teams
    for _ in range(users - floor * teams):
        open_teams = [i for i in range(teams) if sizes[i] < cap]
        sizes[rng.choices(open_teams, [weights[i] for i in open_teams])[0]] += 1
    return sizes


def _person(spec: SimulationSpec, knobs: OrganisationKnobs, rng: random.Random, index: int,
            team: str, zone: dict[str, float], culture: dict[str, float]) -> Person:
    night_owl = rng.random() < knobs.night_owls
    clients = tuple(rng.sample(("ide", "chat", "cli"), rng.randint(1, 3)))
    models = rng.choices(EVERYDAY_MODELS, knobs.model_weights, k=3)
    volume = rng.lognormvariate(math.log(knobs.volume_median), knobs.volume_spread)
    if rng.random() < knobs.pareto_share:
        volume *= rng.paretovariate(knobs.pareto_alpha)
    agents = rng.random() < knobs.agent_people
    long_context = rng.random() < knobs.long_context_people
    return Person(
        user_id=f"user-{index:04d}",
        team=team,
        utc_offset=zone[team] if rng.random() >= knobs.off_zone_share
        else rng.choice(knobs.timezones + (-8, 0, 1, 5.5, 8)),
        start_hour=rng.uniform(13, 16) if night_owl else rng.uniform(6, 11),
        work_hours=rng.uniform(9, 13) if night_owl else rng.uniform(5, 11),
        night_owl=night_owl,
        weekend_worker=rng.random() < knobs.weekend_workers,
        requests_per_hour=min(60.0, max(0.05, volume * culture[team])),
        session_length=rng.uniform(3, 15),
        log_input=rng.gauss(math.log(knobs.input_median), knobs.input_spread),
        log_output=rng.gauss(math.log(knobs.output_median), knobs.output_spread),
        main_model=models[0],
        other_models=tuple(m for m in models[1:] if m != models[0]),
        clients=clients,
        client_weights=tuple(sorted((rng.random() for _ in clients), reverse=True)),
        agent_share=rng.uniform(*knobs.agent_session_share) if agents else 0.0,
        seed=spec.seed,
        origin=spec.origin,
        origin_weekday=spec.start.weekday(),
        run_end=spec.end,
        weekend_rate=knobs.weekend_rate[0] if rng.random() < knobs.weekend_workers
        else knobs.weekend_rate[1],
        agent_turns=knobs.agent_turns,
        long_context_share=rng.uniform(*knobs.long_context_session_share)
        if long_context else 0.0,
        big_request_share=rng.uniform(0.02, 0.15)
        if rng.random() < knobs.big_request_people else 0.0,
        reports_cache=rng.random() < knobs.cache_reporting,
        omits_session=rng.random() < knobs.missing_session,
        omits_fingerprint=rng.random() < knobs.missing_fingerprint,
        prompt_repeat=knobs.prompt_repeat,
        size_sample=request_sizes(knobs.request_sizes)
        if knobs.request_sizes != "lognormal" else (),
    )


def plan_on_call(spec: SimulationSpec, knobs: OrganisationKnobs, rng: random.Random,
                 people: list[Person], labels: list[Label]) -> None:
    """A share of people on call for one week, paged on some of its nights."""
    for person in people:
        if rng.random() >= knobs.on_call_people or spec.days < 8:
            continue
        first = rng.randrange(0, spec.days - 7)
        chance = rng.uniform(0.2, 0.7)
        person.on_call_nights = frozenset(d for d in range(first, first + 7)
                                          if rng.random() < chance)
        start = person.local_midnight(first)
        labels.append(Label("", "on_call", person.user_id, person.team, iso(start),
                            iso(start + 7 * DAY + 6 * HOUR), benign=True))


def machine_accounts(spec: SimulationSpec, knobs: OrganisationKnobs, rng: random.Random,
                     teams: list[str], taken: set[str]) -> list[MachineAccount]:
    """``knobs.service_accounts`` machine identities, each with a name of its own."""
    accounts: list[MachineAccount] = []
    for number in range(knobs.service_accounts):
        name = ""
        while not name or name in taken:
            name = rng.choice(MACHINE_NAMES).format(n=rng.randrange(1000),
                                                   word=rng.choice(TEAM_WORDS))
        taken.add(name)
        team = rng.choice(teams) if rng.random() < 0.6 else "automation"
        accounts.append(MachineAccount(spec, name, team, rng.choice(MachineAccount.RHYTHMS),
                                       number))
    return accounts
