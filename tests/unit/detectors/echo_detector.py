"""A detector added the way CONTRIBUTING.md says, for test_adding_a_detector.py: this one
module, and one ``declare(ECHO)`` line where it is switched on (there, a fixture)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.schemas.kinds import KindDeclaration
from tokenradar.schemas.sections import DetectorSection


class EchoConfig(DetectorSection):
    """Requests of one exact size, which nobody sends by chance."""

    size: Annotated[int, Field(ge=1)] = Field(4242, description="The size that alerts.")


ECHO = KindDeclaration("echo", "Requests of one exact size, echoed.", EchoConfig,
                       f"{__name__}:EchoDetector")


class EchoSlot(Slot):
    seen: int = 0


class EchoDetector(Detector):
    """Finds every request of exactly ``size`` input tokens."""

    declaration = ECHO
    slot_type = EchoSlot
    config: EchoConfig

    def observe(self, slot: EchoSlot, observation: Observation) -> Finding | None:
        if observation.event.input_tokens != self.config.size:
            return None
        slot.seen += 1
        return Finding(score=0.9, feature="input_tokens", observed=self.config.size,
                       expected=self.config.size, single_event=True,
                       explanation=f"Request {slot.seen} of exactly {self.config.size} tokens.")
