"""What a cascade costs and how much latency its verification adds, against always-cheap and always-strong.

`complete` runs in process (the service `serve` calls, no MCP framing) against the fake provider APIs on
loopback, every key set, on a capital-city question (qa_retrieval). The fake is scripted per task: the
verifier accepts an answer with probability `--accept` (score 0.9, else 0.2), at each cascade step. Per
acceptance rate, three ways to run the same tasks:

- always-cheap:  `strategy=single` forced to the cascade's draft model;
- always-strong: `strategy=single` forced to the cascade's last escalation model (its tier-1 model);
- cascade:       draft, verifier, escalations as the verdicts fall.

Costs are the ledger's (the fake reports fixed usage per answer and per grading, printed below). The added
latency of verification is measured in the same run: the median of the verifier's attempts, and the median
end-to-end latency of cascades accepted at the draft against always-cheap's. Figures only, no assertions.

    python bench/bench_cascade.py [--accept 0.3 0.6 0.9] [--tasks 40] [--cheap-ms 40] [--strong-ms 150]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.domain.config import load_config
from server.domain.registry import Registry
from server.execution.completion import CompleteRequest, CompleteResult
from server.execution.runtime import open_runtime
from server.routing.router import Router
from server.routing.selector import RouteOptions
from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f

TASK = "What is the capital of France?"
ANSWER = {"prompt": 600, "completion": 400}
GRADE = {"prompt": 1000, "completion": 30}


class Bench:
    def __init__(self, fake: f.FakeProviders, runtime: Any, registry: Registry, args: argparse.Namespace) -> None:
        self.fake, self.runtime, self.registry, self.args = fake, runtime, registry, args

    def api(self, model_id: str) -> str:
        model = self.registry.resolve(model_id)
        assert model is not None
        return model.api_model_id

    def answer(self, model_id: str, strong: bool = False) -> None:
        delay = (self.args.strong_ms if strong else self.args.cheap_ms) / 1000
        self.fake.script(self.api(model_id), f.text("Paris.", **ANSWER, delay_s=delay))

    def verdict(self, model_id: str, accept: bool) -> None:
        reply = json.dumps({"score": 0.9 if accept else 0.2, "feedback": ""})
        self.fake.script(self.api(model_id), f.text(reply, **GRADE, delay_s=self.args.cheap_ms / 1000))

    async def complete(self, **options: Any) -> CompleteResult:
        strategy = options.pop("strategy", "single")
        request = CompleteRequest(TASK, RouteOptions(**options), max_tokens=1024, enable_tools=False,
                                  strategy=strategy)  # fmt: skip
        return await self.runtime.completion.complete(request)

    async def cascade(self, roles: list[tuple[str, str]], rng: random.Random) -> CompleteResult:
        ladder = [model for role, model in roles if role in ("draft", "escalation")]
        verifier = next(model for role, model in roles if role == "verifier")
        for level, model in enumerate(ladder):
            self.answer(model, strong=level > 0)
            if level == len(ladder) - 1:
                break  # the last step is not graded
            accepted = rng.random() < self.args.accept_rate
            self.verdict(verifier, accepted)
            if accepted:
                break
        return await self.complete(strategy="cascade")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run(args: argparse.Namespace) -> None:
    home = tempfile.mkdtemp(prefix="bench-cascade-")
    env = {"MODEL_ROUTER_HOME": home, **ALL_KEYS}
    with f.FakeProviders() as fake:
        config = load_config(f.write_config(Path(home), fake, timeout_s=30), env=env)
        registry = Registry(config, env, local_runtime=lambda: False)
        async with open_runtime(Router(registry), env, toolbox=NoTools()) as runtime:
            bench = Bench(fake, runtime, registry, args)
            fake.default = f.text('{"score": 0.9}', **GRADE)
            probe = await bench.complete(strategy="cascade")  # warm-up, and the plan's roles
            roles = [(r.role, r.model) for r in probe.route.roles]
            draft, strong = roles[0][1], roles[-1][1]
            print(f"plan: {', '.join(f'{role} {model}' for role, model in roles)}")
            print(f"usage per answer {ANSWER}, per grading {GRADE}; latency cheap and verifier {args.cheap_ms} ms, "
                  f"escalations {args.strong_ms} ms; threshold {config.strategies.cascade_threshold}; "
                  f"{args.tasks} tasks per row")  # fmt: skip
            print(f"{'accept':>6} {'always-cheap $/task':>20} {'always-strong $/task':>21} {'cascade $/task':>15} "
                  f"{'escalated':>9} {'verifier p50':>12} {'added p50':>10}")  # fmt: skip
            for rate in args.accept:
                args.accept_rate = rate
                rng = random.Random(19)
                cheap, strong_runs, cascades = [], [], []
                for _ in range(args.tasks):  # interleaved, so drift on a shared machine hits all three alike
                    bench.answer(draft)
                    cheap.append(await bench.complete(force_model=draft))
                    bench.answer(strong, strong=True)
                    strong_runs.append(await bench.complete(force_model=strong))
                    cascades.append(await bench.cascade(roles, rng))
                verifier_ms = [a.latency_ms for c in cascades for a in c.attempts if a.role == "verifier"]
                at_draft = [c.latency_ms for c in cascades if c.strategy.escalations == 0]
                added = _median(at_draft) - _median([c.latency_ms for c in cheap])
                escalated = sum(1 for c in cascades if c.strategy.escalations) / len(cascades)
                print(f"{rate:>6.2f} {_per_task(cheap):>20.6f} {_per_task(strong_runs):>21.6f} "
                      f"{_per_task(cascades):>15.6f} {escalated:>9.0%} {_median(verifier_ms):>9.1f} ms "
                      f"{added:>7.1f} ms")  # fmt: skip


def _per_task(results: list[CompleteResult]) -> float:
    return sum(r.cost_usd or 0.0 for r in results) / len(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accept", type=float, nargs="+", default=[0.3, 0.6, 0.9],
                        help="the verifier's acceptance rate per step (default 0.3 0.6 0.9)")  # fmt: skip
    parser.add_argument("--tasks", type=int, default=40, help="tasks per acceptance rate and path (default 40)")
    parser.add_argument("--cheap-ms", type=float, default=40.0, help="latency of the draft and verifier (40)")
    parser.add_argument("--strong-ms", type=float, default=150.0, help="latency of the escalation models (150)")
    os.environ.setdefault("MODEL_ROUTER_HOME", tempfile.mkdtemp())
    anyio.run(run, parser.parse_args())
