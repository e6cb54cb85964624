"""Role-aware routing: which model for one role of an agent pattern, for hosts that run the patterns.

An agent framework running orchestrator-subagents, evaluator-optimiser or a prompt chain asks
`route_task(task, role=...)`: "which model for this role of this task". The seeds put each role on a
tier (tier 1 frontier … tier 4 lightweight):

| role | tiers, in order | the seeds' reason |
|---|---|---|
| orchestrator | 1, then 2 | it must understand the whole task to split it ("a powerful Tier 1 model") |
| evaluator | 1, then 2 | the final quality check ("a Tier 1 model"); a strong evaluator, a cheaper generator |
| worker | 2, then 3 | a subagent sees one narrower subtask ("can often be lighter"; tier 2 does the main processing) |
| classifier | 4, then 3 | classification and routing are tier 4's job ("a cheap Tier 4 model") |
| summariser | 4, then 3 | tier 4 covers "simple classification, extraction, summarisation" |

Pure: `rank_for_role` orders the fitting models: those on the role's tiers first, in the table's order;
within a tier the decision matrix's own picks for the task's category first (they carry the curated
reasons), then the most capable for the category, or the cheapest under `cheapest`. The selector then
applies availability, tool support and fallbacks as for any route.
"""

from __future__ import annotations

from enum import StrEnum

from server.domain.config import ModelConfig
from server.domain.registry import Registry
from server.domain.tasks import Category


class Role(StrEnum):
    ORCHESTRATOR = "orchestrator"
    WORKER = "worker"
    EVALUATOR = "evaluator"
    CLASSIFIER = "classifier"
    SUMMARISER = "summariser"


ROLE_TIERS: dict[Role, tuple[tuple[int, ...], str]] = {
    Role.ORCHESTRATOR: ((1, 2), "an orchestrator must understand the whole task to split it"),
    Role.EVALUATOR: ((1, 2), "an evaluator makes the final quality check, stronger than the generator"),
    Role.WORKER: ((2, 3), "a worker does one narrower subtask, which a lighter model handles"),
    Role.CLASSIFIER: ((4, 3), "classifying and routing are simple, high-volume work"),
    Role.SUMMARISER: ((4, 3), "summarising and extracting are simple, high-volume work"),
}


def rank_for_role(
    role: Role,
    category: Category,
    models: list[ModelConfig],
    registry: Registry,
    *,
    by_price: bool,
    matrix: tuple[str, ...] = (),
) -> tuple[list[ModelConfig], str]:
    """`models` best first for `role`, and the reason to show. Within a tier, the decision matrix's picks for
    the category (`matrix`, in its order) come first; then the rest, cheapest first if `by_price`."""
    tiers, why = ROLE_TIERS[role]
    picked = {model_id: n for n, model_id in enumerate(matrix)}

    def place(model: ModelConfig) -> int:
        """The model's tier's position in the role's order; other tiers after them, nearest first."""
        if model.tier in tiers:
            return tiers.index(model.tier)
        return len(tiers) + min(abs(model.tier - t) for t in tiers)

    def key(model: ModelConfig) -> tuple[int, int, float, float]:
        capability = registry.capability(model, category.value)
        curated = picked.get(model.id, len(picked))
        if by_price:
            return place(model), curated, registry.price_rank(model), -capability
        return place(model), curated, -capability, registry.price_rank(model)

    ranked = sorted(models, key=key)
    order = "cheapest" if by_price else "most capable"
    tier_text = " then ".join(str(t) for t in tiers)
    return ranked, (
        f"role {role.value}: {why}, so tier {tier_text} (the seeds' tiers per role); within a tier the decision "
        f"matrix's picks for {category.value} first, then the {order}"
    )
