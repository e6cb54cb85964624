"""Running a multi-model strategy: `cascade` and `evaluate_optimise`, each step a fallback-chain run.

Every step runs through the `FallbackChain` (so fallback within a role, retries and the accounting hook work
as for a single route) with the job's `role` set, so each attempt's ledger row names its role. The whole
strategy shares one task id, one deadline and one attempt numbering, so the per-task budget and the task
deadline bound the strategy, not each call. Before each step the primary model's worst case (the request as
it will be sent plus `max_tokens`) is checked against the tightest budget and the deadline is checked; a step
that does not fit is not started, and the strategy ends with the best answer it has, saying why
(`stopped_by`). The reservation made before every provider request still enforces the budgets atomically.

Money is never lost: once a step has produced an answer (its row committed), a later step's failure ends
the strategy with that answer instead of an error; only a ledger that cannot be written (`NotRecorded`)
still fails the call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from server.accounting.budget import BudgetGuard
from server.domain.config import StrategyConfig
from server.domain.messages import Message
from server.domain.pricing import token_cost
from server.domain.tokens import message_tokens, tool_tokens
from server.errors import AllModelsFailed, TaskStopped
from server.execution.fallback import AttemptInfo, FallbackChain, Outcome
from server.execution.job import Job, Progress
from server.execution.roles import Plan, Role, Strategy
from server.execution.verdict import GRADER_MAX_TOKENS, Verdict, grading_messages, parse_verdict

# What a grading reply is expected to cost in output tokens (its estimate in the ledger; max_tokens bounds it).
_GRADE_OUTPUT_ESTIMATE = 60


class StepReport(BaseModel):
    role: str
    model: str = Field(description="The model that played the role (after any fallback within it)")
    score: float | None = Field(default=None, description="The grader's score of this answer (0-1), if graded")
    note: str


class StrategyReport(BaseModel):
    """What a strategy did: its steps, whether the final answer was accepted, and why it stopped."""

    strategy: str = Field(description="single | cascade | evaluate_optimise")
    accepted: bool | None = Field(description="Whether the grader accepted the answer returned; null for single")
    threshold: float | None = Field(description="Score an answer needed to be accepted")
    rounds: int = Field(description="Answers generated (cascade: draft plus escalations; evaluate_optimise: rounds)")
    escalations: int = Field(description="Cascade steps past the draft")
    stopped_by: str | None = Field(
        description="accepted | escalation_end | max_rounds | budget | deadline | step_failed; null for single"
    )
    steps: list[StepReport]


@dataclass
class _Run:
    """A strategy in progress: every attempt so far, the answers and their scores."""

    deadline: float
    attempts: list[AttemptInfo] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    answers: list[tuple[Outcome, float | None]] = field(default_factory=list)

    @property
    def next_attempt_no(self) -> int:
        return len(self.attempts) + 1


class StrategyRunner:
    """Runs a `Plan` on the fallback chain under the task's budget and deadline."""

    def __init__(
        self, fallback: FallbackChain, budget: BudgetGuard | None, settings: StrategyConfig | None = None
    ) -> None:
        settings = settings or StrategyConfig()
        self.fallback = fallback
        self.budget = budget
        self.threshold = settings.cascade_threshold
        self.max_rounds = settings.max_rounds

    async def run(self, plan: Plan, job: Job, task: str, progress: Progress) -> tuple[Outcome, StrategyReport]:
        run = _Run(self.fallback.deadline())
        if plan.strategy is Strategy.CASCADE:
            accepted, stopped = await self._cascade(plan, job, task, run, progress)
        else:
            accepted, stopped = await self._evaluate_optimise(plan, job, task, run, progress)
        best = self._best(run, accepted, latest=plan.strategy is Strategy.CASCADE)
        outcome = dataclasses.replace(best, attempts=run.attempts, tools_called=run.tools)
        report = StrategyReport(
            strategy=plan.strategy.value,
            accepted=accepted,
            threshold=self.threshold,
            rounds=len(run.answers),
            escalations=sum(1 for s in run.steps if s.role == "escalation"),
            stopped_by=stopped,
            steps=run.steps,
        )
        return outcome, report

    async def _cascade(self, plan: Plan, job: Job, task: str, run: _Run, progress: Progress) -> tuple[bool, str]:
        ladder = [plan.role("draft"), *plan.all("escalation")]
        verifier = plan.role("verifier")
        answer = await self._answer(ladder[0], job, run, progress, first=True)
        assert answer is not None  # the first step raises instead
        for level, upper in enumerate(ladder[1:], start=1):
            verdict, stop = await self._grade(verifier, job, task, answer, run, progress)
            if stop:
                return False, stop
            said = (
                f"cascade: {ladder[level - 1].name} by {answer.model.id}, verifier {verdict.describe(self.threshold)}"
            )
            if verdict.accepts(self.threshold):
                await progress(f"{said}: accepted")
                return True, "accepted"
            await progress(f"{said}, escalating to {upper.model.id}")
            stop = await self._cannot_start(upper, job, run, progress)
            if stop:
                return False, stop
            escalated = await self._answer(upper, job, run, progress)
            if escalated is None:
                return False, self._failed_stop(run)
            answer = escalated
        if len(ladder) == 1:  # nothing to escalate to: grade the draft so the caller knows where it stands
            verdict, stop = await self._grade(verifier, job, task, answer, run, progress)
            await progress(f"cascade: draft by {answer.model.id}, verifier {verdict.describe(self.threshold)}")
            if verdict.accepts(self.threshold):
                return True, "accepted"
            return False, stop or "escalation_end"
        await progress(f"cascade: {answer.model.id} is the last step; its answer is returned ungraded")
        return False, "escalation_end"

    async def _evaluate_optimise(
        self, plan: Plan, job: Job, task: str, run: _Run, progress: Progress
    ) -> tuple[bool, str]:
        generator, evaluator = plan.role("generator"), plan.role("evaluator")
        messages = job.messages
        for round_no in range(1, self.max_rounds + 1):
            if round_no > 1:
                stop = await self._cannot_start(generator, dataclasses.replace(job, messages=messages), run, progress)
                if stop:
                    return False, stop
            answer = await self._answer(
                generator, dataclasses.replace(job, messages=messages), run, progress, first=round_no == 1
            )
            if answer is None:
                return False, self._failed_stop(run)
            verdict, stop = await self._grade(evaluator, job, task, answer, run, progress)
            if stop:
                return False, stop
            graded = verdict.describe(self.threshold)
            said = f"evaluate_optimise: round {round_no} by {answer.model.id}, evaluator {graded}"
            if verdict.accepts(self.threshold):
                await progress(f"{said}: accepted")
                return True, "accepted"
            await progress(said + (", revising" if round_no < self.max_rounds else f", round bound {self.max_rounds}"))
            messages = (*job.messages, Message.assistant_text(answer.text), Message.user(_revise(verdict)))
        return False, "max_rounds"

    async def _answer(
        self, role: Role, job: Job, run: _Run, progress: Progress, *, first: bool = False
    ) -> Outcome | None:
        """One answering step; None when it failed after an earlier step answered (the first step raises)."""
        try:
            outcome = await self.fallback.run(
                role.chain, dataclasses.replace(job, role=role.name), progress,
                deadline=run.deadline, first_attempt_no=run.next_attempt_no,
            )  # fmt: skip
        except (AllModelsFailed, TaskStopped) as exc:
            if first:
                raise  # nothing was answered yet: the call fails as a single route's would
            run.attempts.extend(exc.attempts)
            run.steps.append(StepReport(role=role.name, model=role.model.id, note=f"failed: {exc}"[:500]))
            return None
        run.attempts.extend(outcome.attempts)
        run.tools.extend(outcome.tools_called)
        run.answers.append((outcome, None))
        run.steps.append(StepReport(role=role.name, model=outcome.model.id, note="answered"))
        return outcome

    async def _grade(
        self, role: Role, job: Job, task: str, answer: Outcome, run: _Run, progress: Progress
    ) -> tuple[Verdict, str | None]:
        """Score `answer` with the role's model; a grade that cannot be had or read is a rejection. The
        second value says why grading was not started (`budget`, `deadline`): the strategy ends there."""
        grading = dataclasses.replace(
            job,
            messages=grading_messages(task, answer.text),
            tools=(),
            max_tokens=GRADER_MAX_TOKENS,
            estimated_output_tokens=_GRADE_OUTPUT_ESTIMATE,
            role=role.name,
        )
        stop = await self._cannot_start(role, grading, run, progress)
        if stop:
            run.steps.append(StepReport(role=role.name, model=role.model.id, note=f"not started ({stop})"))
            return Verdict(None, "", f"not graded: {stop}"), stop
        try:
            outcome = await self.fallback.run(
                role.chain, grading, progress, deadline=run.deadline, first_attempt_no=run.next_attempt_no
            )
        except (AllModelsFailed, TaskStopped) as exc:
            run.attempts.extend(exc.attempts)
            run.steps.append(StepReport(role=role.name, model=role.model.id, note=f"failed: {exc}"[:500]))
            return Verdict(None, "", f"the {role.name} failed"), None
        run.attempts.extend(outcome.attempts)
        verdict = parse_verdict(outcome.text)
        run.answers[-1] = (run.answers[-1][0], verdict.score)
        note = verdict.feedback if verdict.score is not None else verdict.describe(self.threshold)
        run.steps.append(StepReport(role=role.name, model=outcome.model.id, score=verdict.score, note=note[:500]))
        return verdict, None

    async def _cannot_start(self, role: Role, job: Job, run: _Run, progress: Progress) -> str | None:
        """Why a step may not start (`budget`, `deadline`), or None: the deadline has time left and the
        primary model's worst case fits what the tightest budget has left."""
        if self.fallback.remaining_s(run.deadline) <= 0:
            await progress(f"{role.name} on {role.model.id} not started: the task deadline has passed")
            return "deadline"
        if self.budget is None or not self.budget.active:
            return None
        tightest = await self.budget.tightest(job.task_id, job.session_id)
        if tightest is None:
            return None
        input_tokens = sum(message_tokens(m) for m in job.messages) + sum(tool_tokens(t) for t in job.tools)
        worst = token_cost(role.model, input_tokens=input_tokens, output_tokens=job.max_tokens)
        if worst is not None and (worst == 0 or worst <= tightest.remaining_usd):
            return None
        cost = "has no price" if worst is None else f"could cost up to ${worst:.6f}"
        await progress(
            f"{role.name} on {role.model.id} not started: it {cost} and the {tightest.name} budget has "
            f"${tightest.remaining_usd:.6f} left"
        )
        return "budget"

    def _failed_stop(self, run: _Run) -> str:
        return "deadline" if self.fallback.remaining_s(run.deadline) <= 0 else "step_failed"

    def _best(self, run: _Run, accepted: bool, *, latest: bool) -> Outcome:
        """The accepted answer (the last one); a cascade's last answer (from the strongest model it reached);
        else the best-scored answer, the latest on a tie."""
        if accepted or latest:
            return run.answers[-1][0]
        ranked = sorted(enumerate(run.answers), key=lambda item: (item[1][1] or -1.0, item[0]))
        return ranked[-1][1][0]


def _revise(verdict: Verdict) -> str:
    feedback = verdict.feedback or "it was not accepted"
    score = "unreadable" if verdict.score is None else f"{verdict.score:.2f}"
    return (
        f"An evaluator scored your answer {score} of 1 and said: {feedback}\n"
        "Write an improved, complete answer to the original task (the answer only, no commentary)."
    )
