"""Each detector's configuration section: what engineers tune for it.

A section is strict (a TOML value of the wrong type is an error, not coerced) and
forbids unknown keys, so a typo cannot silently fall back to a default. Each section
is declared with its kind in :mod:`tokenradar.schemas.kinds`, which is how the whole
configuration (:class:`tokenradar.schemas.config.DetectorConfig`) finds it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
FadingFactor = Annotated[float, Field(gt=0.0, lt=1.0)]


class Section(BaseModel):
    # Strict: a TOML value of the wrong type ("yes" for a switch, "7" or 1.0 for a count)
    # is an error, not coerced; an int is still a float.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DetectorSection(Section):
    """What every detector section has: a switch, and optionally its own quiet time."""

    enabled: bool = True
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Quiet time after an alert of this kind; default scoring's."
    )


class SpikeConfig(DetectorSection):
    """A request, or an hour, far above the user's own baseline."""

    fading_factor: FadingFactor = Field(
        0.05, description="Weight of each new active hour in the user's hourly baseline."
    )
    request_fading_factor: FadingFactor = Field(
        0.02, description="Weight of each new request in the user's per-request baseline."
    )
    min_history_requests: Annotated[int, Field(ge=1)] = Field(
        30, description="Requests seen before single requests are scored."
    )
    min_history_hours: Annotated[int, Field(ge=1)] = Field(
        8, description="Active hours seen before hourly totals are scored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        5.0, description="An hour alerts only at this many times the usual."
    )
    min_request_ratio: Annotated[float, Field(ge=1.0)] = Field(
        10.0, description="A single request alerts only at this many times the usual: "
        "people paste documents, single requests are heavy-tailed."
    )
    min_tokens: Annotated[int, Field(ge=0)] = Field(
        5_000, description="Ignore requests and hours below this many tokens, however unusual."
    )


class DriftConfig(DetectorSection):
    """A sustained change of the user's hourly level, found with a Page-Hinkley test."""

    min_history_hours: Annotated[int, Field(ge=1)] = Field(
        24, description="Active hours seen before the level is tested for drift."
    )
    threshold: Annotated[float, Field(gt=0)] = Field(
        3.0, description="PageHinkley lambda on log10 tokens per active hour; lower is touchier."
    )
    delta: Annotated[float, Field(ge=0)] = Field(
        0.15, description="PageHinkley tolerance: changes smaller than this (log10) are ignored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        1.8, description="Alert only when the new level is at least this many times the old."
    )


class RateConfig(DetectorSection):
    """Requests arriving far faster than the user's norm, in short windows."""

    window_minutes: Annotated[int, Field(ge=1, le=60)] = 10
    fading_factor: FadingFactor = 0.05
    min_history_windows: Annotated[int, Field(ge=1)] = Field(
        12, description="Active windows seen before the request rate is scored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = 4.0
    min_requests: Annotated[int, Field(ge=1)] = Field(
        40, description="Ignore windows with fewer requests than this, however unusual."
    )


class GamingConfig(DetectorSection):
    """Tokenmaxx padding: conversations started inflated one after another, output
    unchanged."""

    min_history_requests: Annotated[int, Field(ge=1)] = Field(
        50, description="Requests seen (and at least ten conversations) before a run is judged."
    )
    min_input_ratio: Annotated[float, Field(ge=1.0)] = Field(
        2.5, description="The run's conversations must start (fresh input, geometric mean) "
        "at least this many times the user's median start."
    )
    max_output_ratio: Annotated[float, Field(ge=1.0)] = Field(
        1.6, description="Output per request must stay within this factor of usual."
    )
    min_conversations: Annotated[int, Field(ge=1, le=12)] = Field(
        3, description="Conversations in a row started inflated before alerting: one or two "
        "big ones are a person's own draws."
    )
    min_run_minutes: Annotated[float, Field(ge=0)] = Field(
        60.0, description="The run must span at least this long: padding goes on for a "
        "working day, an hour of bigger conversations is a busy hour."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = Field(
        24 * 60.0, description="Padding goes on for days: one alert a day at most."
    )


class ScriptedLoopConfig(DetectorSection):
    """Near-identical requests at machine-regular intervals."""

    min_regular_requests: Annotated[int, Field(ge=3)] = Field(
        6, description="Consecutive regular gaps before alerting."
    )
    max_jitter: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.1, description="A gap is regular within this relative distance of the running period."
    )
    max_period_seconds: Annotated[float, Field(gt=0)] = 900.0
    min_repeat_share: Probability = Field(
        0.5, description="Share of the run's regular requests repeating a recent prompt, or "
        "tokens near-constant, to alert."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = Field(
        12 * 60.0, description="A loop runs for hours: one alert per half day at most."
    )


class RunawayAgentConfig(DetectorSection):
    """Agent traffic sustained through hours the user is normally not active."""

    agent_clients: list[str] = Field(
        default_factory=lambda: ["*agent*"],
        description="Clients that run autonomously: names or shell patterns (case-insensitive).",
    )
    min_profile_days: Annotated[int, Field(ge=1)] = Field(
        2, description="Active days seen before an hour never seen counts as off-hours "
        "(weakly: an hour unseen in N days scores as 1 in N+1); before, only an hour their "
        "team is seldom active in counts, when the team's hours are known."
    )
    off_hours_probability: Probability = Field(
        0.1, description="An hour the user is active on fewer than this share of days is off."
    )
    min_requests: Annotated[int, Field(ge=1)] = 30
    min_minutes: Annotated[float, Field(ge=0)] = 20.0
    max_gap_minutes: Annotated[float, Field(gt=0)] = Field(
        15.0, description="A longer pause ends the run of agent requests."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = Field(
        12 * 60.0, description="A runaway night is one incident."
    )


class NewPatternConfig(DetectorSection):
    """A burst on a model or client the user never used, at an unusual hour."""

    min_profile_days: Annotated[int, Field(ge=1)] = Field(
        2, description="Active days seen before anything the user uses counts as new, "
        "and an hour never seen as unusual; before, only a model or client their team never "
        "used counts, at an hour their team's hours call unusual."
    )
    min_burst_requests: Annotated[int, Field(ge=1)] = 10
    burst_minutes: Annotated[float, Field(gt=0)] = 45.0
    unusual_hour_probability: Probability = Field(
        0.15, description="An hour the user is active on fewer than this share of days."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = Field(
        12 * 60.0, description="One misuse episode, one alert."
    )


class CreepConfig(DetectorSection):
    """A gradual rise of the daily level, in tokens per active hour or output tokens per
    request (held days tested against a frozen reference)."""

    min_history_days: Annotated[int, Field(ge=2)] = Field(
        7, description="Active days learned into the reference before any is tested."
    )
    slack: Annotated[float, Field(ge=0)] = Field(
        0.5, description="CUSUM allowance k, in standard deviations of the daily level: "
        "days above the reference by more than this start holding the reference still."
    )
    prior_day_std: Annotated[float, Field(gt=0)] = Field(
        0.12, description="Usual day-to-day spread of a user's tokens per active hour "
        "(log10), which a young reference's own spread is shrunk toward."
    )
    prior_output_std: Annotated[float, Field(gt=0)] = Field(
        0.05, description="Usual day-to-day spread of a user's output tokens per request "
        "(log10 of a long day's geometric mean), which a young reference's own spread is "
        "shrunk toward."
    )
    prior_days: Annotated[float, Field(ge=0)] = Field(
        2.0, description="How many days of evidence the prior spread weighs."
    )
    min_rising_days: Annotated[int, Field(ge=2)] = Field(
        3, description="Held days (the running one included) before a rise is reported."
    )
    provisional_hours: Annotated[int, Field(ge=1, le=24)] = Field(
        3, description="Active hours after which the running day is scored, not yet learned."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        1.25, description="Alert only when recent days are this many times the reference."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = 14 * 24 * 60.0


class PopulationShiftConfig(DetectorSection):
    """A whole team moving together: one alert for the team, none for its members."""

    min_members: Annotated[int, Field(ge=2)] = Field(
        4, description="Members with a working day, and a usual one known, before a team's "
        "working day is judged."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        1.25, description="The smallest shift reported: the team's median member over their "
        "own usual working day (its requests or tokens), over its last "
        "working days."
    )
    min_days: Annotated[int, Field(ge=1)] = Field(
        2, description="Working days, at least, whose mean level is tested."
    )
    min_z: Annotated[float, Field(gt=0)] = Field(
        3.5, description="How sure a shift must be to be reported: its mean level in "
        "standard errors (of its days' medians and of the members' usual levels)."
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] | None = 14 * 24 * 60.0
