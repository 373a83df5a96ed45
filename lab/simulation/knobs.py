"""Knobs of a randomised organisation, each drawn per organisation from its seed.

The default simulation is one organisation, built to issue 3's description; detectors
tuned on it agree with it. A randomised organisation (``OrganisationKnobs.draw(seed)``)
draws every habit of the organisation, and the ranges of its incidents, far wider than
anyone expects, so that a detector judged on many of them is judged on behaviour, not
on one generator's proportions (``make robustness``).

Incident ranges (:class:`IncidentRanges`) default to the default simulation's; only a
randomised organisation widens them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from tokenradar.lab.simulation.traces import TRACES
from tokenradar.lab.simulation.usage import EVERYDAY_MODELS, EVERYDAY_WEIGHTS

WIDE_TIMEZONES = (-10, -8, -7, -6, -5, -3, 0, 1, 2, 3, 4, 5.5, 7, 8, 9, 10, 12)
"""UTC offsets, hours, a randomised organisation picks its zones from."""


@dataclass(frozen=True)
class IncidentRanges:
    """Ranges each injected incident draws its shape from (low, high)."""

    gaming_input_factor: tuple[float, float] = (3.0, 10.0)
    gaming_request_factor: tuple[float, float] = (1.3, 2.0)
    gaming_days: tuple[int, int] = (1, 3)
    gaming_pooled_share: tuple[float, float] = (0.6, 0.9)
    creep_daily: tuple[float, float] = (0.03, 0.08)
    spike_factor: tuple[float, float] = (10.0, 30.0)
    spike_shapes: tuple[str, ...] = ("requests", "size", "both")
    loop_period_s: tuple[float, float] = (5.0, 90.0)
    loop_hours: tuple[float, float] = (2.0, 8.0)
    loop_jitter: tuple[float, float] = (0.002, 0.03)
    runaway_gap_s: tuple[float, float] = (5.0, 40.0)
    runaway_hours: tuple[float, float] = (4.0, 12.0)
    runaway_growth: tuple[float, float] = (0.03, 0.10)
    misuse_requests: tuple[int, int] = (20, 80)
    misuse_minutes: tuple[float, float] = (15.0, 45.0)
    shift_factor: tuple[float, float] | None = None
    """A team's total usage factor (requests x size); None: the default simulation's
    2-3x more requests with 1-1.2x larger ones."""
    shift_ramp_days: tuple[int, int] = (3, 5)


WIDE_INCIDENTS = IncidentRanges(
    gaming_input_factor=(2.5, 15.0), gaming_request_factor=(1.0, 2.5), gaming_days=(1, 4),
    gaming_pooled_share=(0.3, 0.95), creep_daily=(0.03, 0.10), spike_factor=(8.0, 30.0),
    spike_shapes=("requests", "size", "both", "joint", "joint"),
    loop_period_s=(3.0, 300.0), loop_hours=(1.0, 10.0), loop_jitter=(0.001, 0.1),
    runaway_gap_s=(3.0, 90.0), runaway_hours=(2.0, 14.0), runaway_growth=(0.01, 0.15),
    misuse_requests=(10, 150), misuse_minutes=(10.0, 90.0), shift_factor=(1.4, 3.0),
    shift_ramp_days=(2, 8))
"""What a randomised organisation's incidents draw from. A ``joint`` spike is 2-4x the
person's pace with requests several times their size, most repeating one prompt."""


@dataclass(frozen=True)
class OrganisationKnobs:
    """An organisation's habits. Every field is drawn by :meth:`draw`, per seed."""

    volume_median: float
    """Median requests per working hour of a person."""
    volume_spread: float
    """Log-normal sigma of requests per hour between people."""
    pareto_share: float
    """Share of people whose volume is further multiplied by a Pareto draw."""
    pareto_alpha: float
    input_median: float
    input_spread: float
    output_median: float
    output_spread: float
    agent_people: float
    """Share of people who run agents at all."""
    agent_session_share: tuple[float, float]
    """Range of the share of an agent user's sessions that are agent runs."""
    agent_turns: tuple[int, int]
    long_context_people: float
    """Share of people with long-context sessions: input growing by each previous output
    and tool result, most of it read from cache."""
    long_context_session_share: tuple[float, float]
    big_request_people: float
    """Share of people who now and then send one very large request (a document)."""
    cache_reporting: float
    """Share of people whose producer reports ``cache_read_tokens``."""
    missing_session: float
    """Share of people whose producer omits ``session_id``."""
    missing_fingerprint: float
    """Share of people whose producer omits ``prompt_fingerprint``."""
    prompt_repeat: float
    """Chance a person's prompt repeats one of their recent ones."""
    night_owls: float
    weekend_workers: float
    weekend_rate: tuple[float, float]
    """Chance of working a weekend day: (weekend workers, everyone else)."""
    on_call_people: float
    """Share of people on call for one week, with sessions some nights."""
    team_size_spread: float
    """Log-normal sigma of team weights (team sizes from 3 up to 200)."""
    timezones: tuple[float, ...]
    off_zone_share: float
    """Share of people not in their team's time zone."""
    model_weights: tuple[float, ...]
    """Weights of EVERYDAY_MODELS as main models: cheap or expensive mixes."""
    vacation_share: float
    new_joiner_share: float
    adoption_share: float
    service_accounts: int
    """Machine identities under arbitrary names, running at machine rhythm."""
    shifted_teams: int
    duplicate_share: float
    incidents: IncidentRanges = field(default=WIDE_INCIDENTS)
    request_sizes: str = "lognormal"
    """Where request sizes come from: a log-normal per person, or the shape of a public
    trace (``azure-code``, ``azure-conv``: tokenradar.lab.simulation.traces) at their level."""

    @classmethod
    def draw(cls, seed: int) -> OrganisationKnobs:
        """The knobs of organisation ``seed``: far wider than any one organisation."""
        rng = random.Random(f"{seed}/knobs")
        low_agent = rng.uniform(0.05, 0.4)
        low_turns = rng.randint(5, 20)
        zones = rng.randint(1, 6)
        weights = [rng.gammavariate(0.6, 1.0) * w for w in EVERYDAY_WEIGHTS]
        return cls(
            volume_median=_log_uniform(rng, 0.5, 2.5),
            volume_spread=rng.uniform(0.5, 1.6),
            pareto_share=rng.uniform(0.0, 0.12),
            pareto_alpha=rng.uniform(1.1, 2.5),
            input_median=_log_uniform(rng, 700, 9000),
            input_spread=rng.uniform(0.4, 1.4),
            output_median=_log_uniform(rng, 150, 1500),
            output_spread=rng.uniform(0.3, 0.9),
            agent_people=rng.uniform(0.02, 0.8),
            agent_session_share=(low_agent, min(0.9, low_agent + rng.uniform(0.05, 0.5))),
            agent_turns=(low_turns, low_turns + rng.randint(10, 70)),
            long_context_people=rng.uniform(0.0, 0.6),
            long_context_session_share=(rng.uniform(0.02, 0.2), rng.uniform(0.2, 0.8)),
            big_request_people=rng.uniform(0.0, 0.3),
            cache_reporting=rng.choice((0.0, rng.uniform(0.2, 1.0), 1.0)),
            missing_session=_some_or_all(rng),
            missing_fingerprint=_some_or_all(rng),
            prompt_repeat=rng.uniform(0.0, 0.15),
            night_owls=rng.uniform(0.0, 0.15),
            weekend_workers=rng.uniform(0.0, 0.3),
            weekend_rate=(rng.uniform(0.1, 0.6), rng.uniform(0.0, 0.08)),
            on_call_people=rng.uniform(0.0, 0.2),
            team_size_spread=rng.uniform(0.2, 1.6),
            timezones=tuple(rng.sample(WIDE_TIMEZONES, zones)),
            off_zone_share=rng.uniform(0.0, 0.6),
            model_weights=tuple(weights),
            vacation_share=rng.uniform(0.0, 0.15),
            new_joiner_share=rng.uniform(0.0, 0.1),
            adoption_share=rng.uniform(0.0, 0.08),
            service_accounts=rng.randint(0, 8),
            shifted_teams=rng.randint(2, 6),
            duplicate_share=rng.choice((0.0, rng.uniform(0.0, 0.03))),
            request_sizes=rng.choices(("lognormal", *TRACES), (2, 1, 1))[0],
        )

    def summary(self) -> dict[str, float | int | str]:
        """The knobs a reader needs to tell organisations apart, rounded."""
        cheap = sum(w for m, w in zip(EVERYDAY_MODELS, self.model_weights, strict=True)
                    if m in CHEAP_MODELS) / sum(self.model_weights)
        return {
            "volume_spread": round(self.volume_spread, 2),
            "pareto_share": round(self.pareto_share, 3),
            "agent_people": round(self.agent_people, 2),
            "long_context_people": round(self.long_context_people, 2),
            "big_request_people": round(self.big_request_people, 2),
            "cache_reporting": round(self.cache_reporting, 2),
            "missing_session": round(self.missing_session, 2),
            "missing_fingerprint": round(self.missing_fingerprint, 2),
            "on_call_people": round(self.on_call_people, 2),
            "team_size_spread": round(self.team_size_spread, 2),
            "timezones": len(self.timezones),
            "cheap_model_share": round(cheap, 2),
            "service_accounts": self.service_accounts,
            "shifted_teams": self.shifted_teams,
            "request_sizes": self.request_sizes,
        }


CHEAP_MODELS = ("claude-haiku-4-5", "gpt-5-mini", "gemini-2.5-flash")


def _some_or_all(rng: random.Random) -> float:
    """A share of producers: none, some, or (one organisation in five) all of them."""
    return rng.choices((0.0, rng.uniform(0.05, 0.7), 1.0), (0.35, 0.45, 0.2))[0]


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))
