"""Configuration: the shipped defaults and registry, merged with the user's TOML file, validated once.

Sources, later ones winning: the catalogues (`domain.catalog`: models.dev facts, genai-prices prices),
`server/data/defaults.toml` and `server/data/models.toml` (shipped: our routing layer), then the file
named by `MODEL_ROUTER_CONFIG`. A field any file writes wins over the catalogue; each model's
`price_source` says where its prices came from. Tables merge key by key; `[[models]]` merge by `id` (a user
entry with a shipped id overrides just the fields it names; a new id adds a model). Keys come only from
environment variables named by `api_key_env`. Every problem becomes one `ConfigError` naming the file,
the key and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.domain.catalog import Catalog, load_catalog
from server.domain.tasks import Category
from server.errors import ConfigError

CONFIG_ENV = "MODEL_ROUTER_CONFIG"
DATABASE_URL_ENV = "MODEL_ROUTER_DATABASE_URL"
HOME_ENV = "MODEL_ROUTER_HOME"
MODEL_ID_PATTERN = r"^[A-Za-z0-9_.-]+/[^\s/][^\s]*$"
Situation = Literal[
    "default", "cost_optimized", "fallback", "math_heavy", "high_quality", "high_complexity", "long_context"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    """One endpoint: its wire format, where it lives and which env var holds its key."""

    kind: Literal["openai", "anthropic", "llamacpp"]
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    self_hosted: bool = False
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    prices_from: str | None = None  # this provider's id in genai-prices
    facts_from: str | None = None  # this provider's id in models.dev
    # Client-side rate limits over every model of this provider, counted across replicas (None: no limit).
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=None, gt=0)


class ModelConfig(_Strict):
    """One registry entry (see the comment at the top of `server/data/models.toml`)."""

    id: str = Field(pattern=MODEL_ID_PATTERN)
    api_model_id: str = Field(min_length=1)
    display_name: str = ""
    tier: int = Field(ge=1, le=4)
    quality_index: int | None = Field(default=None, ge=0, le=100)
    reasoning_score: int | None = Field(default=None, ge=0, le=100)
    coding_score: int | None = Field(default=None, ge=0, le=100)
    instruction_following: int | None = Field(default=None, ge=0, le=100)
    tokens_per_second: int | None = Field(default=None, gt=0)
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    release_date: str | None = None
    input_price: float | None = Field(default=None, ge=0)
    cached_input_price: float | None = Field(default=None, ge=0)
    output_price: float | None = Field(default=None, ge=0)
    cache_write_price: float | None = Field(default=None, ge=0)
    long_context_from: int | None = Field(default=None, gt=0)  # past this many input tokens: the long_* prices
    long_context_input_price: float | None = Field(default=None, ge=0)
    long_context_cached_input_price: float | None = Field(default=None, ge=0)
    long_context_output_price: float | None = Field(default=None, ge=0)
    price_source: str | None = None  # which price data priced this model; None: unpriced
    supports_tools: bool = False
    supports_vision: bool = False
    reasoning_model: bool = False
    open_weights: bool = False
    enabled: bool = True
    strengths: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # Client-side rate limits on this model, counted across replicas (None: no limit).
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=None, gt=0)

    @property
    def provider(self) -> str:
        return self.id.split("/", 1)[0]


class RoutingConfig(_Strict):
    """How the selector decides; thresholds are on the analyser's strong_score."""

    baseline_model: str = Field(pattern=MODEL_ID_PATTERN)
    analyzer: str = Field(default="auto", pattern=r"^(auto|local|learned|llm:\S+)$")
    # The learned model's file; empty: learned_router.json.gz in the data dir (relative paths: in the data dir).
    learned_model: str = ""
    llm_analyzer_timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_fallbacks: int = Field(default=3, ge=0, le=4)
    balanced_threshold: float = Field(default=0.5, ge=0, le=1)
    cheapest_threshold: float = Field(default=0.85, ge=0, le=1)
    best_quality_threshold: float = Field(default=0.0, ge=0, le=1)
    matrix: dict[Category, dict[Situation, str]] = Field(default_factory=dict)


class ToolServerConfig(_Strict):
    """One MCP sub-server the host starts over stdio (empty command: this Python interpreter)."""

    enabled: bool = True
    command: str = ""
    args: tuple[str, ...] = ()
    pass_env: tuple[str, ...] = Field(default=(), description="Host env vars this child may see")
    env: dict[str, str] = Field(default_factory=dict, description="Extra fixed env for the child")
    timeout_s: float = Field(default=30.0, gt=0, le=600)


class BudgetConfig(_Strict):
    """Spending limits in USD; None means no limit."""

    per_task_usd: float | None = Field(default=None, ge=0)
    per_session_usd: float | None = Field(default=None, ge=0)
    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    # Not a limit: a `complete` whose estimated cost is above this asks the human first (MCP elicitation).
    confirm_above_usd: float | None = Field(default=None, ge=0)


class SafetyConfig(_Strict):
    """What `complete` may do without a human: a critical task (deleting production data, moving money,
    changing credentials) runs unconfirmed only when the client cannot ask and this allows it."""

    allow_unattended_critical: bool = Field(default=False, strict=True)  # a safety switch: "yes" is not true


class RateLimitConfig(_Strict):
    """How a call meets a full `rpm`/`tpm`/`max_concurrent` limit: it waits up to `wait_s` for room, then
    moves to the next model of its chain. `lease_s` frees the concurrency slot of a replica killed mid-call."""

    wait_s: float = Field(default=5.0, ge=0, le=600)
    lease_s: float = Field(default=900.0, gt=0, le=86_400)


class StrategyConfig(_Strict):
    """Bounds of the multi-model strategies of `complete`: a cascade escalates a draft whose verifier score is
    below `cascade_threshold`; evaluate_optimise stops after `max_rounds` generations."""

    cascade_threshold: float = Field(default=0.7, ge=0, le=1)
    max_rounds: int = Field(default=3, ge=1, le=10)


class StoreConfig(_Strict):
    """Where the ledger, budgets and sessions live: empty url, SQLite in the data dir; a postgresql:// URL,
    one PostgreSQL database shared by every replica. `MODEL_ROUTER_DATABASE_URL` overrides the file; a
    password belongs in that variable, PGPASSWORD, or a libpq service or password file, never in the config."""

    url: str = Field(default="", pattern=r"^(|postgres(ql)?://.*)$")


class Config(_Strict):
    """The whole validated configuration, loaded once at start and passed explicitly."""

    providers: dict[str, ProviderConfig]
    models: tuple[ModelConfig, ...]
    routing: RoutingConfig
    budgets: BudgetConfig = BudgetConfig()
    safety: SafetyConfig = SafetyConfig()
    rate_limits: RateLimitConfig = RateLimitConfig()
    strategies: StrategyConfig = StrategyConfig()
    store: StoreConfig = StoreConfig()
    tool_servers: dict[str, ToolServerConfig] = Field(default_factory=dict)
    prices_as_of: str
    price_table_version: str
    data_dir: Path
    source: str = "shipped defaults"

    @field_validator("providers")
    @classmethod
    def _provider_ids(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for pid in value:
            if not pid or "/" in pid:
                raise ValueError(f"provider id {pid!r} must be non-empty and contain no '/'")
        return value


def fingerprint(config: Config) -> str:
    """A short hash of everything that shapes a route (models, providers, routing); stable across runs."""
    import hashlib
    import json

    relevant = config.model_dump(mode="json", include={"providers", "models", "routing", "price_table_version"})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def default_data_dir(env: Mapping[str, str]) -> Path:
    """`MODEL_ROUTER_HOME`, else the platform's user data directory."""
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser()
    import platformdirs  # local import: only needed when no home is given

    return Path(platformdirs.user_data_dir("model-router", appauthor=False))


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None, catalog: Catalog | None = None
) -> Config:
    """Load shipped defaults, merge the user file (argument, else `$MODEL_ROUTER_CONFIG`), fill each model
    from the catalogues (`catalog`, else the data dir's: saved price data or the bundled snapshot), validate."""
    env = os.environ if env is None else env
    raw = _merge(_read_shipped("defaults.toml"), _read_shipped("models.toml"))
    source = "shipped defaults"
    user_priced: set[str] = set()
    path = path or env.get(CONFIG_ENV) or None
    if path:
        user_path = Path(path).expanduser()
        user = _read_toml(user_path)
        _refuse_stored_password(user, user_path)
        raw = _merge(raw, user)
        source = str(user_path)
        user_priced = {
            m["id"]
            for m in user.get("models", [])
            if isinstance(m, dict) and any(k.endswith("_price") for k in m) and "price_source" not in m
        }
    if env.get(DATABASE_URL_ENV):
        raw["store"] = {**raw.get("store", {}), "url": env[DATABASE_URL_ENV]}
    raw["data_dir"] = default_data_dir(env)
    raw["source"] = source
    catalog = catalog or load_catalog(raw["data_dir"])
    raw["prices_as_of"] = catalog.as_of
    raw["price_table_version"] = catalog.label
    providers = raw.get("providers", {}) if isinstance(raw.get("providers"), dict) else {}
    raw["models"] = [
        _from_catalog(m, providers, catalog, f"config file {source}" if m.get("id") in user_priced else None)
        if isinstance(m, dict) and isinstance(m.get("id"), str)
        else m
        for m in raw.get("models", [])
    ]
    return _validate(raw, source)


def _refuse_stored_password(user: dict[str, Any], path: Path) -> None:
    store = user.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    if isinstance(url, str) and re.match(r"^[a-z]+://[^/@]*:[^/@]*@", url):
        raise ConfigError(
            f"config file {path}: store.url holds a password; remove it and set it in {DATABASE_URL_ENV}, "
            "PGPASSWORD, or a libpq password file (~/.pgpass) or service file instead"
        )


_FACTS = ("display_name", "context_window", "max_output_tokens", "supports_tools", "supports_vision",
          "open_weights", "release_date")  # fmt: skip
_PRICES = {"input_price": "input", "output_price": "output", "cached_input_price": "cached_input",
           "cache_write_price": "cache_write", "long_context_from": "long_context_from",
           "long_context_input_price": "long_input", "long_context_cached_input_price": "long_cached_input",
           "long_context_output_price": "long_output"}  # fmt: skip


def _from_catalog(
    entry: dict[str, Any], providers: Mapping[str, Any], catalog: Catalog, user_source: str | None
) -> dict[str, Any]:
    """Fill the fields `entry` leaves out from the catalogues; say where its prices came from."""
    out = dict(entry)
    provider = providers.get(entry["id"].split("/", 1)[0])
    provider = provider if isinstance(provider, dict) else {}
    refs = [r for r in (entry.get("api_model_id"), entry["id"].split("/", 1)[-1]) if isinstance(r, str)]
    facts_from, prices_from = provider.get("facts_from"), provider.get("prices_from")
    facts = next((f for r in refs if facts_from and (f := catalog.facts(facts_from, r))), None)
    for name in _FACTS:
        value = getattr(facts, name, None) if facts is not None else None
        if name not in out and value is not None:
            out[name] = value
    prices = next((p for r in refs if prices_from and (p := catalog.prices(prices_from, r))), None)
    if "context_window" not in out and prices_from:
        window = next((w for r in refs if (w := catalog.context_window(prices_from, r))), None)
        if window:
            out["context_window"] = window
    if user_source is None and ("price_source" in out or any(name in out for name in _PRICES)):
        return out  # priced (or marked) by the shipped registry
    if prices is not None:
        for name, attr in _PRICES.items():
            if name not in out and getattr(prices, attr) is not None:
                out[name] = getattr(prices, attr)
    if user_source is None:
        out["price_source"] = catalog.label if prices is not None else None
    else:
        out["price_source"] = f"{user_source} over {catalog.label}" if prices is not None else user_source
    return out


def _read_shipped(name: str) -> dict[str, Any]:
    text = resources.files("server.data").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found (set {CONFIG_ENV} to an existing TOML file)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read: {exc.strerror}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`; `models` lists merge by id."""
    out = dict(base)
    for key, value in over.items():
        if key == "models" and isinstance(value, list):
            out[key] = _merge_models(base.get("models", []), value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_models(base: list[Any], over: list[Any]) -> list[Any]:
    by_id: dict[str, dict[str, Any]] = {m["id"]: dict(m) for m in base if isinstance(m, dict) and "id" in m}
    extra: list[Any] = []
    for entry in over:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            by_id[entry["id"]] = {**by_id.get(entry["id"], {}), **entry}
        else:
            extra.append(entry)  # left for validation to report
    return [*by_id.values(), *extra]


def _validate(raw: dict[str, Any], source: str) -> Config:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw, source)) from None
    _check_references(config, source)
    return config


def _describe(exc: ValidationError, raw: dict[str, Any], source: str) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            models = raw.get("models", [])
            entry = models[loc[1]] if loc[1] < len(models) else None
            ident = entry.get("id") if isinstance(entry, dict) else None
            loc[1] = f"[id={ident}]" if ident else f"[{loc[1]}]"
        key = ".".join(str(p) for p in loc).replace(".[", "[")
        given = f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else ""
        problems.append(f"{key}: {_allowed(err)}{given}")
    more = len(exc.errors()) - len(problems)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"config file {source}: " + "; ".join(problems) + suffix


def _allowed(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling against the README's configuration reference)"
    if err["type"] == "missing" and err["loc"][-1] == "context_window":
        return "required: no catalogue lists this model's context window; set context_window"
    if err["type"] == "missing":
        return "required key is missing"
    return str(err["msg"])


def _check_references(config: Config, source: str) -> None:
    ids = {m.id for m in config.models}
    seen: set[str] = set()
    for model in config.models:
        if model.provider not in config.providers:
            raise ConfigError(
                f"config file {source}: models[id={model.id}]: provider {model.provider!r} is not defined; "
                f"add a [providers.{model.provider}] table (known: {', '.join(sorted(config.providers))})"
            )
        for name in (model.id, *model.aliases):
            if name in seen:
                raise ConfigError(f"config file {source}: model id or alias {name!r} is used twice")
            seen.add(name)
    if config.routing.baseline_model not in ids:
        raise ConfigError(
            f"config file {source}: routing.baseline_model: {config.routing.baseline_model!r} is not a "
            "registry model id (see `model-router models`)"
        )
    for category, row in config.routing.matrix.items():
        for situation, model_id in row.items():
            if model_id not in ids:
                raise ConfigError(
                    f"config file {source}: routing.matrix.{category.value}.{situation}: {model_id!r} is not "
                    "a registry model id (see `model-router models`)"
                )
