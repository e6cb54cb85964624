"""Critical actions: the analyser flags tasks that ask for something hard to undo, not tasks about such things;
and the confirmation policy and its config keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.analysis.critical import critical_actions
from server.analysis.local import analyze_task
from server.domain.config import SafetyConfig, load_config
from server.errors import ConfigError, ConfirmationRequired, NotConfirmed
from server.execution.confirmation import Confirmation, HumanAnswer, Verdict, settle
from tests.helpers import run_cli

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"

# Requests for an action that is hard to undo: each must be flagged.
CRITICAL = [
    "Delete the production database",
    "rotate the admin credentials",
    "Send the payment to ACME Corp",
    "Please deploy version 2.3 of the API",
    "Can you transfer $500 to my savings account?",
    "Drop all the tables in the prod db",
    "I need you to revoke John's admin access",
    "Summarise this thread and then delete the old backups on the server",
    "Run `rm -rf /var/lib/postgresql` on the database host",
    "Make john an admin on the GitHub org",
    "Pay the invoice from Globex today.",
    "Wire 10,000 euros to the supplier",
    "Push the hotfix to production now",
    "Merge the release branch into main",
    "Buy 100 shares of Tesla at $700",
    "Share the API keys with the contractor",
    "Shut down the production cluster",
    "Reset the root password on the web server",
    "Execute DROP TABLE users; against the live database",
    "Disable 2FA for all admin accounts",
    "Hi Sam, kindly go ahead and refund the last 3 transactions.",
    "1. Back up the logs\n2. Wipe the staging and production servers",
]

# About such things, or harmless actions: none may be flagged.
HARMLESS = [
    "Explain what a database deletion cascade is",
    "Write a poem about production lines",
    "How do I delete a branch in git?",
    "What is the difference between a secret and a credential?",
    "Write a Python function that deletes duplicate entries from a list",
    "Summarise the payment terms in this contract",
    "Deploy metaphors in your essay about the ocean",
    "Remove the duplicate lines from this text",
    "Translate 'delete the production database' into French",
    "Write a script to deploy a Flask app to Heroku",
    "Describe how admins rotate credentials safely",
    "Delete the second paragraph of my essay",
    "Deploy the app to staging",
    "Why did the production outage happen?",
    "Send an email to the admin team about the meeting",
    "Generate a strong password",
    "Place the items in the order given",
    "Make a list of payment methods we accept",
    "Update the README with the new install steps",
    "Do not delete the production database under any circumstances; explain the backup policy instead.",
    "Should I rotate my API keys every 90 days?",
    "What does `rm -rf` do?",
    "Review this SQL migration for mistakes: DROP TABLE users;",
    "Compare the payment APIs of Stripe and Adyen",
]


@pytest.mark.parametrize("task", CRITICAL)
def test_requests_for_critical_actions_are_flagged(task: str) -> None:
    assert critical_actions(task), task


@pytest.mark.parametrize("task", HARMLESS)
def test_tasks_about_such_actions_are_not_flagged(task: str) -> None:
    assert critical_actions(task) == (), task


def test_the_flag_names_the_request_and_leaves_the_rest_of_the_task_out() -> None:
    found = critical_actions("Summarise the incident report. Then delete the production database, please!")
    assert found == ("delete the production database",)
    analysis = analyze_task("Summarise the incident report. Then delete the production database, please!")
    assert analysis.critical and analysis.critical_actions == found
    assert not analyze_task("Summarise the incident report.").critical


def test_a_request_buried_in_a_long_document_is_read_only_at_its_ends() -> None:
    document = "The parties shall pay the fees within 30 days. " * 100
    runbook = document + "Step 7. Delete the production database. " + document
    assert critical_actions(runbook + "Summarise the runbook above.") == ()  # the document's text, not a request
    assert critical_actions(document + "Now wire the fees to the supplier.") == ("wire the fees to the supplier",)


def test_dev_prompts_are_rarely_flagged_and_only_for_actions() -> None:
    """Public benchmark prompts (questions, code, writing, documents) as negatives: a flag there is a false alarm
    unless the prompt is an agent's request to move money or the like."""
    if not EVAL.exists():
        pytest.skip(f"{EVAL} absent (the public eval data is not shipped)")
    rows = [json.loads(line) for line in EVAL.read_text().splitlines()]
    flagged = {row["id"]: critical_actions(row["prompt"]) for row in rows if critical_actions(row["prompt"])}
    assert len(flagged) <= len(rows) // 100, flagged  # at most 1% of 353 everyday prompts
    assert all(row_id.startswith("bfcl:") for row_id in flagged), flagged  # only agent (function-calling) requests


def _confirmation(*, actions: tuple[str, ...] = ("delete the production database",), above: float | None = None):
    return Confirmation("Delete the production database", "openai/gpt-4.1", 0.0123, actions, above)


def test_a_yes_to_another_question_does_not_count() -> None:
    asked = _confirmation()
    now = Confirmation("Delete the production database", "anthropic/claude-opus-5-5", 0.2, asked.critical_actions, None)
    with pytest.raises(NotConfirmed, match="route changed"):
        settle(now, HumanAnswer(asked.question, Verdict.ACCEPTED), SafetyConfig())
    assert settle(asked, HumanAnswer(asked.question, Verdict.ACCEPTED), SafetyConfig()) is Verdict.ACCEPTED


def test_without_a_human_only_critical_tasks_may_run_and_only_when_allowed() -> None:
    allowed = SafetyConfig(allow_unattended_critical=True)
    assert settle(None, None, SafetyConfig()) is Verdict.NOT_NEEDED
    assert settle(_confirmation(), None, allowed) is Verdict.UNATTENDED
    with pytest.raises(ConfirmationRequired, match=r"allow_unattended_critical = true under \[safety\]"):
        settle(_confirmation(), None, SafetyConfig())
    with pytest.raises(ConfirmationRequired, match=r"budgets\.confirm_above_usd"):
        settle(_confirmation(actions=(), above=0.01), None, allowed)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[budgets]\nconfirm_above_usd = -1\n", "budgets.confirm_above_usd"),
        ('[safety]\nallow_unattended_critical = "yes"\n', "safety.allow_unattended_critical"),
        ("[safety]\nallow_unattended = true\n", "safety.allow_unattended"),
    ],
)
def test_bad_confirmation_keys_are_refused_naming_them(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "router.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, env={"MODEL_ROUTER_HOME": str(tmp_path)})


@pytest.mark.slow
def test_analyze_lists_the_critical_requests_so_the_flag_can_be_measured_on_your_own_prompts(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    lines = [{"id": "a", "prompt": "Please rotate the admin credentials."}, {"id": "b", "prompt": HARMLESS[0]}]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = run_cli("analyze", str(prompts), home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["a"]["critical_actions"] == ["rotate the admin credentials"]
    assert rows["b"]["critical_actions"] == []
