"""The one query behind the report's strategy section, shared by both backends (only the placeholders and
the window clause differ): per task, what its roles say it ran and cost; then per strategy and category.

Only rows with a role are read (the partial index `attempts_role` holds exactly those), so the work grows
with the strategy tasks in the window, not with the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from server.store.interface import StrategySums


def strategy_sums_sql(where: str) -> str:
    """The query for the attempts matching `where` (a SQL condition on `attempts`, with its placeholders)."""
    return f"""
SELECT strategy, category, COUNT(*), SUM(escalated), SUM(generations), SUM(cost_pusd), SUM(unpriced),
       SUM(draft_input), SUM(draft_cached), SUM(draft_output)
FROM (
    SELECT task_id,
           CASE WHEN SUM(CASE WHEN role IN ('generator', 'evaluator') THEN 1 ELSE 0 END) > 0
                THEN 'evaluate_optimise' ELSE 'cascade' END AS strategy,
           MIN(COALESCE(category, '(none)')) AS category,
           MAX(CASE WHEN role = 'escalation' THEN 1 ELSE 0 END) AS escalated,
           SUM(CASE WHEN role = 'generator' AND outcome = 'ok' THEN 1 ELSE 0 END) AS generations,
           COALESCE(SUM(cost_pusd), 0) AS cost_pusd,
           MAX(CASE WHEN cost_pusd IS NULL AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS unpriced,
           SUM(CASE WHEN role = 'draft' AND outcome = 'ok' THEN input_tokens ELSE 0 END) AS draft_input,
           SUM(CASE WHEN role = 'draft' AND outcome = 'ok' THEN cached_input_tokens ELSE 0 END) AS draft_cached,
           SUM(CASE WHEN role = 'draft' AND outcome = 'ok' THEN output_tokens ELSE 0 END) AS draft_output
    FROM attempts
    WHERE role IS NOT NULL AND {where}
    GROUP BY task_id
) AS per_task
GROUP BY strategy, category
ORDER BY strategy, category
"""


def strategy_sums(rows: Iterable[Sequence[Any]]) -> list[StrategySums]:
    """The query's rows as records (SUMs of no rows are NULL: 0)."""
    return [StrategySums(str(r[0]), str(r[1]), *(int(v or 0) for v in r[2:])) for r in rows]
