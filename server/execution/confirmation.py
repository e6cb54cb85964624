"""When a `complete` needs a human's yes before its first paid call, what the human is shown, and what
their answer (or its absence) lets happen.

Pure decisions, no I/O. `needed` says why a routed task must be confirmed: it asks for a critical action
(the analyser's `critical_actions`), or its estimated cost is above `budgets.confirm_above_usd` (an
unpriced model's unknown cost counts as above). `Confirmation.question` is the text the host shows; it
holds only what the route decides (task, model, estimate, reasons), so the same task routed the same way
asks the same question. `settle` turns the human's answer into a `Verdict`, or applies the policy when
nobody could be asked: a critical task runs only if `[safety] allow_unattended_critical` is true, a
costly one never; both refusals say how to allow the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from server.domain.config import BudgetConfig, SafetyConfig
from server.errors import ConfirmationRequired, NotConfirmed
from server.routing.router import RouteResult

_SUMMARY_CHARS = 200
_NOBODY = (
    "nobody can be asked here (the MCP client does not declare the elicitation capability, or this is the command line)"
)


class Verdict(StrEnum):
    """How a call's confirmation ended; recorded in its decision row."""

    NOT_NEEDED = "not_needed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    UNATTENDED = "unattended"  # needed, nobody could be asked, and the config allows it (critical tasks only)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Why one routed task needs a human's yes, and what they are shown."""

    task_summary: str
    model: str
    estimated_cost_usd: float | None
    critical_actions: tuple[str, ...]
    confirm_above_usd: float | None  # set when the estimate is above it (or unknown): the cost is a reason

    @property
    def reasons(self) -> tuple[str, ...]:
        found = [f'critical action: "{action}"' for action in self.critical_actions]
        if self.confirm_above_usd is not None:
            found.append(f"{_cost(self.estimated_cost_usd)}, above budgets.confirm_above_usd "
                         f"(${self.confirm_above_usd:.6f})")  # fmt: skip
        return tuple(found)

    @property
    def question(self) -> str:
        return (
            "model-router asks before sending this task to a model.\n"
            f"Task: {self.task_summary}\n"
            f"Why: {'; '.join(self.reasons)}\n"
            f"Model: {self.model} ({_cost(self.estimated_cost_usd)})\n"
            "Accept to run it; decline and nothing is sent to any model."
        )


@dataclass(frozen=True, slots=True)
class HumanAnswer:
    """A human's answer to the question they were shown."""

    question: str
    verdict: Verdict  # ACCEPTED, DECLINED or CANCELLED


def needed(task: str, route: RouteResult, budgets: BudgetConfig) -> Confirmation | None:
    """Why this routed task needs a human's yes before it runs, or None when it does not."""
    threshold = budgets.confirm_above_usd
    cost = route.estimated_cost_usd
    costly = threshold is not None and (cost is None or cost > threshold)
    if not route.critical_actions and not costly:
        return None
    return Confirmation(
        task_summary=summary(task),
        model=route.primary_model,
        estimated_cost_usd=cost,
        critical_actions=tuple(route.critical_actions),
        confirm_above_usd=threshold if costly else None,
    )


def settle(confirmation: Confirmation | None, answer: HumanAnswer | None, safety: SafetyConfig) -> Verdict:
    """The verdict for a call; raises `ConfirmationRequired` when it needs a yes nobody could give, and
    `NotConfirmed` when the yes was given to another question (the route changed after it was asked)."""
    if confirmation is None:
        return Verdict.NOT_NEEDED
    if answer is not None:
        if answer.question != confirmation.question:
            raise NotConfirmed(
                "the route changed after the confirmation was given (now: "
                f"{confirmation.model}, {_cost(confirmation.estimated_cost_usd)}); nothing was sent to any "
                "model. Call complete again to be asked about the new route"
            )
        return answer.verdict
    if confirmation.confirm_above_usd is not None:
        raise ConfirmationRequired(
            f"this call needs a human's confirmation ({'; '.join(confirmation.reasons)}) and {_NOBODY}; nothing "
            "was sent to any model. Use a host that supports elicitation, raise or remove "
            "budgets.confirm_above_usd in the config file, or make the call cheaper (cost_preference cheapest, a "
            "lower max_tokens)"
        )
    if safety.allow_unattended_critical:
        return Verdict.UNATTENDED
    raise ConfirmationRequired(
        f"this task needs a human's confirmation before it runs ({'; '.join(confirmation.reasons)}) and "
        f"{_NOBODY}; nothing was sent to any model. Use a host that supports elicitation (it shows a "
        "confirmation), or set allow_unattended_critical = true under [safety] in the config file to run "
        "critical tasks unconfirmed"
    )


def refusal(verdict: Verdict, confirmation: Confirmation) -> NotConfirmed:
    """The error a declined or cancelled confirmation ends the call with."""
    how = "declined" if verdict is Verdict.DECLINED else "cancelled"
    return NotConfirmed(
        f"the user {how} running this task on {confirmation.model} ({'; '.join(confirmation.reasons)}); nothing "
        "was sent to any model and nothing was charged. Do not retry unless the user asks you to"
    )


def summary(task: str) -> str:
    """The task on one line, cut to a length a confirmation dialog can show."""
    flat = re.sub(r"\s+", " ", task[: _SUMMARY_CHARS * 4]).strip()
    return flat if len(flat) <= _SUMMARY_CHARS else flat[: _SUMMARY_CHARS - 1].rstrip() + "…"


def _cost(cost: float | None) -> str:
    return "no price known: cost unknown" if cost is None else f"estimated cost ${cost:.6f}"
