"""Detector configuration: what engineers tune, validated before a worker starts.

Every key is checked (unknown keys are errors, so a typo cannot silently fall back
to a default), and the whole configuration hashes to a ``config_version`` that
every alert carries.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Annotated, Any, Self

from pydantic import (
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails

from tokenradar.schemas.alerts import Severity
from tokenradar.schemas.calendar import CalendarWindow
from tokenradar.schemas.kinds import (
    RESERVED_NAMES,
    KindDeclaration,
    SectionT,
    detector_kinds,
)
from tokenradar.schemas.money import BudgetsConfig, PriceTable
from tokenradar.schemas.sections import (
    CreepConfig,
    DetectorSection,
    DriftConfig,
    GamingConfig,
    NewPatternConfig,
    PopulationShiftConfig,
    Probability,
    RateConfig,
    RunawayAgentConfig,
    ScriptedLoopConfig,
    Section,
    SpikeConfig,
)

__all__ = [  # the sections stay importable from here, where they used to be
    "AllowlistConfig", "CalibrationConfig", "CreepConfig", "DetectorConfig",
    "DetectorSection", "DriftConfig", "GamingConfig", "NewPatternConfig",
    "NoisyIdentityConfig", "PopulationShiftConfig", "RateConfig", "RunawayAgentConfig",
    "ScoringConfig", "ScriptedLoopConfig", "SeverityBands", "SpikeConfig",
]
DEFAULT_REORDER_MAX_EVENTS = 1_000
DEFAULT_MAX_THRESHOLD = 0.9
"""Default of ``scoring.reorder_max_events``: a held event costs its buffer's record
about 345 bytes (342 of JSON on ``tokenradar simulate``'s events), so a full buffer's
record is about 350 KB, a third of the producer's default largest request (1 MB); 8
events a second for one team, over the 120 s window. The busiest buffer of the
simulated organisation holds 26."""


class ScoringConfig(Section):
    """How scores become alerts, for every detector alike."""

    alert_threshold: Probability = Field(
        0.6,
        description="A detector alerts when its score reaches this. Scores are "
        "-log10(tail probability)/10: 0.6 means a 1-in-a-million observation for this user.",
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] = Field(
        240, description="One incident, one alert: a user+kind alerts again after this quiet time."
    )
    dedupe_event_ids: Annotated[int, Field(ge=0, le=4096)] = Field(
        384, description="Most event ids remembered per user to drop redelivered duplicates "
        "(within dedupe_horizon_days; beyond it, the oldest days are forgotten first).",
    )
    dedupe_horizon_days: Annotated[int, Field(ge=1, le=60)] = Field(
        7, description="A redelivered event is recognised as a duplicate up to this many days "
        "after the user's newest event.",
    )
    reorder_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        120, description="Events of a routing key (team, else user) are held this long, in "
        "event time, and scored in event-time order; later ones are scored as late.",
    )
    reorder_max_events: Annotated[int, Field(ge=1, le=100_000)] = Field(
        DEFAULT_REORDER_MAX_EVENTS, description="Most events a routing key's reorder buffer "
        "holds (and 512 KiB of them): past it the earliest are scored at once, in order, so "
        "that the buffer's changelog record stays well under the producer's 1 MB requests.",
    )


class SeverityBands(Section):
    """Lowest score of each severity; below ``medium`` an alert is ``low``."""

    medium: Probability = 0.7
    high: Probability = 0.85
    critical: Probability = 0.95

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        if not self.medium <= self.high <= self.critical:
            raise ValueError(
                f"bands must ascend: medium ({self.medium}) <= high ({self.high}) "
                f"<= critical ({self.critical})"
            )
        return self


class CalibrationConfig(Section):
    """Renormalisation: each detector's threshold raised to what the organisation's own
    ordinary days reach, so an alert means the same on any organisation."""

    enabled: bool = True
    false_alerts_per_1000_user_days: Annotated[float, Field(gt=0.0, le=1000.0)] = Field(
        0.05, description="Budget of each detector: alerts per 1,000 active user-days that "
        "the team's own ordinary days would raise at the calibrated threshold."
    )
    min_user_days: Annotated[int, Field(ge=1)] = Field(
        100, description="A team's active user-days before its own days move a threshold."
    )
    tail_user_days: Annotated[int, Field(ge=5)] = Field(
        20, description="User-days in the upper tail the extrapolation starts from."
    )
    max_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        DEFAULT_MAX_THRESHOLD, description="However noisy a team's ordinary days, a score "
        "this high (0.9: one in a billion) still alerts: the budget never switches a "
        "detector off."
    )


class NoisyIdentityConfig(Section):
    """An identity that keeps alerting gets one summary instead of a stream."""

    enabled: bool = True
    max_alerts: Annotated[int, Field(ge=1)] = Field(
        4, description="New alerts an identity may raise within window_days; the next one "
        "becomes a single noisy_identity alert, and the identity stays quiet until the "
        "window has passed."
    )
    window_days: Annotated[float, Field(gt=0.0)] = Field(30.0, description="The window.")


class AllowlistConfig(Section):
    """Who is scored but never alerted on: service accounts, known batch jobs."""

    users: list[str] = Field(
        default_factory=list, description="user ids, or shell patterns such as 'svc-*'."
    )
    teams: list[str] = Field(default_factory=list)

    def allows(self, user_id: str, team: str | None) -> bool:
        if team is not None and team in self.teams:
            return True
        return any(fnmatch.fnmatchcase(user_id, pattern) for pattern in self.users)


class DetectorConfig(Section):
    """The whole detector configuration, as read from a TOML file.

    Besides the sections below, one section per declared detector
    (:func:`tokenradar.schemas.kinds.detector_kinds`), under its kind's name: ``[spike]``,
    ``[creep]``... Those are read from the declarations whenever a configuration is
    validated or its JSON schema built, so a detector declared later has its section
    too; read one with :meth:`section` (or as an attribute, ``config.spike``).

    Examples
    --------
    >>> from tokenradar.schemas.kinds import SPIKE
    >>> config = DetectorConfig.model_validate(
    ...     {"spike": {"min_ratio": 8.0}, "teams": {"web": {"spike": {"min_ratio": 9.0}}}})
    >>> config.section(SPIKE).min_ratio, config.for_team("web").spike.min_ratio
    (8.0, 9.0)
    >>> DetectorConfig.model_validate({"spiek": {}})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for DetectorConfig
    spiek
      Extra inputs are not permitted [type=extra_forbidden, input_value={}, input_type=dict]
    ...
    """

    # Detector sections are extra fields, validated by _detector_sections; any other
    # unknown key is refused there.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    scoring: ScoringConfig = ScoringConfig()
    severity: SeverityBands = SeverityBands()
    calibration: CalibrationConfig = CalibrationConfig()
    noisy_identity: NoisyIdentityConfig = NoisyIdentityConfig()
    allowlist: AllowlistConfig = AllowlistConfig()
    calendar: list[CalendarWindow] = Field(
        default_factory=list, description="Windows when kinds are silenced or not learned: "
        "[[calendar]] tables.")
    prices: PriceTable = Field(PriceTable(), description="USD per million tokens, per model.")
    budgets: BudgetsConfig = Field(BudgetsConfig(), description="Monthly budgets, USD.")
    teams: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-team overrides of detector sections: [teams.<team>.<detector>].",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _detector_sections(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Validate each declared detector's section (its defaults when absent), refuse
        any other unknown key, and report every problem at once, each at its key path."""
        if not isinstance(data, dict):
            return handler(data)
        document, problems = dict(data), list[InitErrorDetails]()
        for kind in detector_kinds():
            value = document.get(kind.name, {})
            if isinstance(value, kind.section):
                continue
            try:
                document[kind.name] = kind.section.model_validate(value)
            except ValidationError as exc:
                problems += [_located(error, kind.name) for error in exc.errors()]
        sections = {kind.name for kind in detector_kinds()}
        problems += [InitErrorDetails(type="extra_forbidden", loc=(key,), input=document[key])
                     for key in document if key not in sections and key not in cls.model_fields]
        result = None
        try:
            result = handler(document)
        except ValidationError as exc:
            problems += [_located(error) for error in exc.errors()]
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return result

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The JSON schema, with each declared detector's section as a property."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        for kind in detector_kinds():
            schema["properties"][kind.name] = handler(kind.section.__pydantic_core_schema__)
        schema["additionalProperties"] = False
        return schema

    def section(self, kind: KindDeclaration[SectionT]) -> SectionT:
        """The configuration section of a declared detector."""
        section: SectionT = getattr(self, kind.name)
        return section

    @model_validator(mode="after")
    def _severity_above_threshold(self) -> Self:
        if self.severity.medium < self.scoring.alert_threshold:
            raise ValueError(
                f"severity.medium ({self.severity.medium}) is below "
                f"scoring.alert_threshold ({self.scoring.alert_threshold}): "
                "raise the band or lower the threshold"
            )
        return self

    @model_validator(mode="after")
    def _team_overrides_valid(self) -> Self:
        problems = [problem for team in self.teams for problem in self._team_problems(team)]
        if problems:
            # One line per problem, each "teams.<team>.<key>: what", so all are reported.
            raise ValueError("\n".join(problems))
        return self

    def _team_problems(self, team: str) -> list[str]:
        """What is wrong with a team's overrides, each naming its key path; [] if nothing."""
        problems, sections = [], {}
        for section, values in self.teams[team].items():
            where = f"teams.{team}.{section}"
            if section in RESERVED_NAMES:
                problems.append(f"{where}: cannot be overridden per team")
            elif not isinstance(values, dict):
                problems.append(f"{where}: unknown key: a team overrides detector sections, "
                                f"as tables such as [teams.{team}.spike]")
            elif section not in {kind.name for kind in detector_kinds()}:
                problems.append(f"{where}: not a detector section")
            else:
                sections[section] = values
        try:
            self._merged(sections)
        except ValidationError as exc:
            problems += [f"teams.{team}.{'.'.join(str(part) for part in error['loc'])}: "
                         f"{error['msg']}" for error in exc.errors()]
        return problems

    def _merged(self, sections: dict[str, dict[str, Any]]) -> DetectorConfig:
        """This configuration with ``sections`` merged over its own, validated."""
        document = self.model_dump()
        document["teams"] = {}
        for section, values in sections.items():
            document[section] = {**document[section], **values}
        return DetectorConfig.model_validate(document)

    def for_team(self, team: str | None) -> DetectorConfig:
        """This configuration with the team's overrides applied (itself if none)."""
        if team is None or team not in self.teams:
            return self
        return self._merged(self.teams[team])

    @property
    def version(self) -> str:
        """Hash of the configuration in force: equal configs give equal versions.

        A section added since left at its defaults is left out, so a configuration that
        does not use it keeps the version (and the alert ids) it had before.
        """
        document = self.model_dump(mode="json")
        if not document["calendar"]:  # a configuration from before calendars keeps its hash
            del document["calendar"]
        for section in ("prices", "budgets"):  # likewise from before prices and budgets
            if getattr(self, section) == type(self).model_fields[section].default:
                del document[section]
        if self.scoring.reorder_max_events == DEFAULT_REORDER_MAX_EVENTS:  # and its bound
            del document["scoring"]["reorder_max_events"]
        if self.calibration.max_threshold == DEFAULT_MAX_THRESHOLD:  # and the threshold's
            del document["calibration"]["max_threshold"]
        canonical = json.dumps(document, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def severity_of(self, score: float) -> Severity:
        bands = self.severity
        if score >= bands.critical:
            return "critical"
        if score >= bands.high:
            return "high"
        if score >= bands.medium:
            return "medium"
        return "low"


def _located(error: Any, *section: str) -> InitErrorDetails:
    """A validation error of a section, re-raised at its path in the whole configuration."""
    return InitErrorDetails(type=error["type"], loc=(*section, *error["loc"]),
                            input=error["input"], ctx=error.get("ctx", {}))
