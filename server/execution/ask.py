"""One metered provider request outside `complete`: the LLM analyser's `Ask`.

The request goes through the same accounting hook as the fallback chain's attempts (`AttemptBook`), so its
ledger row (category `router_analysis`, its own task id) is committed before the answer is handed back;
a row that cannot be committed raises `NotRecorded` instead of returning the answer. Its worst case is
reserved first, as for any model round: small as it is, an unreserved call is how a budget gets overspent.
A refusal (`BudgetExceeded`) reaches the analyser, which then uses the local verdict.
"""

from __future__ import annotations

import uuid

import anyio

from server.accounting.attempts import AttemptBook, TaskAccount
from server.analysis.llm import Ask
from server.domain.config import ModelConfig
from server.domain.messages import ChatRequest, ChatResponse
from server.domain.tokens import request_input_tokens
from server.providers.base import ChatModel

ANALYSIS_CATEGORY = "router_analysis"


def metered_ask(chat: ChatModel, model: ModelConfig, book: AttemptBook) -> Ask:
    """An `Ask` that sends each request to `model` once and records it before returning."""

    async def ask(request: ChatRequest) -> ChatResponse:
        account = TaskAccount(f"analysis-{uuid.uuid4().hex[:12]}", None, ANALYSIS_CATEGORY)
        meter = book.open(model, account, attempt_no=1)
        # Held before the call like every model round; a refusal means nothing was sent, so no row.
        await meter.reserve(request_input_tokens(request), request.max_tokens)
        outcome, error = "error", None
        try:
            response = await chat.chat(request)
            meter.add(response.usage)
            outcome = "ok"
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"  # the analyser's own deadline
            raise
        except Exception as exc:
            error = exc
            raise
        finally:
            await meter.close(outcome, error)
        return response

    return ask
