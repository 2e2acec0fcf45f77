"""The ``[crystallize]`` config section."""

from __future__ import annotations

from pydantic import Field

from llmos.config import Section


class CrystallizeConfig(Section):
    auto: bool = Field(
        False, description="Crystallize a goal signature on its own, after a successful run, "
        "once it has min_runs successful runs that replay cannot serve (a value derived from "
        "what a step observed or computed). Paid: needs budget.run_cap_usd and the balance.")
    min_runs: int = Field(2, ge=1, description="Successful runs of one signature a crystal "
                          "is compiled from (its regression suite has one cassette each).")
    agreements: int = Field(2, ge=1, description="Shadow runs that must agree with the normal "
                            "path (same calls, same files) before a crystal becomes active.")
    demote_after: int = Field(2, ge=1, description="Failures (at run time, or shadow "
                              "disagreements) after which a crystal is demoted.")
    enabled: bool = Field(True, description="Whether active crystals bid (CRYSTALLIZED mode).")
