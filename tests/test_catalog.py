"""The registry built on the catalogues: current models and prices from genai-prices and models.dev, a price
change that reprices new calls but never logged ones, unpriced unknown models, and `prices update` against
a fake of the catalogue's download URL on loopback."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from mcp.client import Client

from server.domain.catalog import PRICES_FILE, save_price_data
from server.domain.config import load_config
from server.domain.pricing import token_cost
from server.domain.registry import Registry
from server.routing.router import Router
from server.routing.selector import RouteOptions
from server.tools.toolbox import NoTools
from tests.fakes import providers as f
from tests.helpers import attempt_rows, host_server, run_cli

CODING = "Write a complete Python implementation of a thread-safe LRU cache with unit tests and run them."
ANTHROPIC_ONLY = {"ANTHROPIC_API_KEY": "test-anthropic-key-0000"}


def _price_data(input_mtok: float, output_mtok: float) -> bytes:
    """genai-prices' published data format (prices/new_data/v2/data.json), one provider and model."""
    model = {"id": "claude-sonnet-5-5", "match": {"equals": "claude-sonnet-5-5"},
             "prices": {"input_mtok": input_mtok, "output_mtok": output_mtok}}  # fmt: skip
    provider = {"id": "anthropic", "name": "Anthropic", "api_pattern": r"https://api\.anthropic\.com",
                "model_match": {"contains": "claude"}, "models": [model]}  # fmt: skip
    return json.dumps([provider]).encode()


class _PriceServer:
    """The catalogue's download URL, faked on loopback: answers GET with `status` and `body`."""

    def __init__(self) -> None:
        self.status, self.body, self.hits = 200, b"", 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/prices/new_data/v2/data.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def price_server() -> Iterator[_PriceServer]:
    server = _PriceServer()
    yield server
    server.close()


def test_with_an_anthropic_key_a_hard_coding_task_goes_to_a_current_anthropic_model() -> None:
    registry = Registry(load_config(env={**os.environ, **ANTHROPIC_ONLY}), {**os.environ, **ANTHROPIC_ONLY})
    result = anyio.run(Router(registry).route, CODING, RouteOptions())
    primary = registry.resolve(result.primary_model)
    assert primary is not None and primary.provider == "anthropic" and primary.tier == 1
    assert primary.release_date is None or primary.release_date >= "2026"  # newer than the models.dev data
    assert result.primary_model == "anthropic/claude-sonnet-5-5"
    assert primary.price_source is not None and primary.price_source.startswith("genai-prices")
    assert result.estimated_cost_usd is not None and result.estimated_cost_usd > 0


def test_a_model_no_catalogue_prices_is_routable_and_unpriced(tmp_path: Path) -> None:
    user = tmp_path / "router.toml"
    user.write_text(
        '[[models]]\nid = "openai/mystery-1"\napi_model_id = "mystery-1"\ntier = 3\ncontext_window = 8000\n'
    )
    config = load_config(user, env=os.environ)
    mystery = next(m for m in config.models if m.id == "openai/mystery-1")
    r1 = next(m for m in config.models if m.id == "together/deepseek-r1")  # a seed model genai-prices lacks
    for model in (mystery, r1):
        assert model.price_source is None and model.input_price is None
        assert token_cost(model, input_tokens=1000, output_tokens=100) is None  # unknown, never $0
    assert Registry(config, {"OPENAI_API_KEY": "k"}).is_available(mystery)


def test_a_users_price_overrides_the_catalogue_and_says_so(tmp_path: Path) -> None:
    user = tmp_path / "router.toml"
    user.write_text('[[models]]\nid = "anthropic/claude-sonnet-5-5"\ninput_price = 1.0\n')
    sonnet = next(m for m in load_config(user, env=os.environ).models if m.id == "anthropic/claude-sonnet-5-5")
    assert sonnet.input_price == 1.0 and sonnet.output_price == 10.0  # the rest still from the catalogue
    assert sonnet.price_source is not None and sonnet.price_source.startswith(f"config file {user} over genai-prices")


@pytest.mark.anyio
async def test_a_price_change_reprices_new_calls_but_not_logged_rows(tmp_path: Path, fake: f.FakeProviders) -> None:
    config_path = f.write_config(tmp_path, fake)
    env = {**os.environ, **ANTHROPIC_ONLY}
    costs = []
    for price_change in (False, True):
        if price_change:
            data_dir = load_config(config_path, env=env).data_dir
            save_price_data(data_dir, _price_data(20, 100), "http://test", datetime(2026, 12, 3, tzinfo=UTC))
        server, config = host_server(config_path, env, toolbox=NoTools())
        fake.script("claude-sonnet-5-5", f.text("done", prompt=1000, completion=100))
        async with Client(server) as client:
            result = await client.call_tool("complete", {"task": CODING, "enable_tools": False})
        assert result.structured_content is not None and result.structured_content["model_used"] == (
            "anthropic/claude-sonnet-5-5"
        )
        costs.append(result.structured_content["cost_usd"])
    rows = attempt_rows(config)
    # 1,000 in x $2 + 100 out x $10 (bundled), then x $20 and x $100 (the new data), per 1M tokens
    assert costs == [pytest.approx(0.003), pytest.approx(0.03)]
    assert [r["cost_pusd"] for r in rows] == [3_000_000_000, 30_000_000_000]  # the first row kept its cost
    assert "bundled, prices as of" in rows[0]["price_table_version"]
    assert rows[1]["price_table_version"].startswith("genai-prices data fetched 2026-12-03")


def test_prices_update_fetches_newer_data_and_new_calls_use_it(tmp_path: Path, price_server: _PriceServer) -> None:
    price_server.body = _price_data(20, 100)
    done = run_cli("prices", "update", "--url", price_server.url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "anthropic/claude-sonnet-5-5: $2/$10 -> $20/$100" in done.stdout
    assert price_server.hits == 1
    rows = {r["id"]: r for r in json.loads(run_cli("models", "--json", home=tmp_path).stdout)}
    sonnet = rows["anthropic/claude-sonnet-5-5"]
    assert (sonnet["input_price_per_million"], sonnet["output_price_per_million"]) == (20.0, 100.0)
    assert sonnet["price_source"].startswith("genai-prices data fetched ")


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (500, b"oops", "answered HTTP 500"),
        (200, b"<html>not json</html>", "is not genai-prices data"),
        (200, b'{"not": "a list"}', "is not genai-prices data"),
    ],
)
def test_a_failed_prices_update_keeps_the_old_data_and_says_why(
    tmp_path: Path, price_server: _PriceServer, status: int, body: bytes, said: str
) -> None:
    price_server.body = _price_data(3, 30)
    assert run_cli("prices", "update", "--url", price_server.url, home=tmp_path).returncode == 0
    saved = (tmp_path / PRICES_FILE).read_bytes()
    price_server.status, price_server.body = status, body
    done = run_cli("prices", "update", "--url", price_server.url, home=tmp_path)
    assert done.returncode == 1
    assert said in done.stderr and "still using genai-prices data fetched" in done.stderr
    assert (tmp_path / PRICES_FILE).read_bytes() == saved
    rows = {r["id"]: r for r in json.loads(run_cli("models", "--json", home=tmp_path).stdout)}
    assert rows["anthropic/claude-sonnet-5-5"]["input_price_per_million"] == 3.0


def test_prices_update_with_nothing_listening_keeps_the_bundled_data(tmp_path: Path) -> None:
    done = run_cli("prices", "update", "--url", "http://127.0.0.1:9/data.json", home=tmp_path)
    assert done.returncode == 1
    assert "cannot fetch http://127.0.0.1:9/data.json" in done.stderr and "still using genai-prices" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / PRICES_FILE).exists()


def test_models_lists_forty_priced_routable_models_across_eight_providers(tmp_path: Path) -> None:
    rows = json.loads(run_cli("models", "--json", home=tmp_path).stdout)
    priced = [r for r in rows if r["enabled"] and r["price_source"] and r["prices_as_of"]]
    assert len(priced) >= 40
    assert len({r["provider"] for r in priced}) >= 8
    assert all(r["price_source"].startswith("genai-prices") for r in priced)


def test_models_filters_by_provider_search_and_availability(tmp_path: Path) -> None:
    groq = json.loads(run_cli("models", "--json", "--provider", "groq", home=tmp_path).stdout)
    assert groq and {r["provider"] for r in groq} == {"groq"}
    claude = json.loads(run_cli("models", "--json", "--search", "CLAUDE", home=tmp_path).stdout)
    assert claude and all("claude" in r["id"] for r in claude)
    env = {"MISTRAL_API_KEY": "test-mistral-key-0000"}
    usable = json.loads(run_cli("models", "--json", "--available", home=tmp_path, env=env).stdout)
    assert "mistral" in {r["provider"] for r in usable} and all(r["available"] for r in usable)
    assert not {r["provider"] for r in usable} & {"openai", "anthropic", "groq"}


@pytest.mark.anyio
async def test_the_models_resource_filters_like_the_command() -> None:
    from server.mcp.app import build_server

    keys = {"GROQ_API_KEY": "test-groq-key-0000"}
    registry = Registry(load_config(env=os.environ), keys, local_runtime=lambda: False)
    async with Client(build_server(Router(registry))) as client:

        async def rows(uri: str) -> list[dict[str, object]]:
            result = await client.read_resource(uri)
            return list(json.loads(result.contents[0].text))  # type: ignore[union-attr]

        everything = await rows("router://models")
        groq = await rows("router://models?provider=groq")
        usable_groq = await rows("router://models?provider=groq&available=true&search=gpt-oss")
    assert len(everything) >= 40
    assert groq and {r["provider"] for r in groq} == {"groq"}
    assert {r["id"] for r in usable_groq} == {"groq/gpt-oss-120b", "groq/gpt-oss-20b"}


def test_a_long_prompt_pays_the_catalogues_long_context_price() -> None:
    pro = next(m for m in load_config(env=os.environ).models if m.id == "google/gemini-2.5-pro")
    # genai-prices: $1.25 in / $10 out up to 200k input tokens, $2.50 / $15 for the whole call past it
    assert token_cost(pro, input_tokens=100_000, output_tokens=1_000) == Decimal("0.135")
    assert token_cost(pro, input_tokens=300_000, output_tokens=1_000) == Decimal("0.765")
