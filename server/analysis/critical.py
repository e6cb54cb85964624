"""Critical actions: does a task ask for something hard to undo, which a human should confirm first?

The seeds' cue list (deploy, production, delete, admin, payment, credential, secret) names the topics;
alone it flags every task that merely mentions them ("explain what a database deletion cascade is", "a
poem about production lines"). Here a task is critical only when one of its clauses *asks for an action*:
it starts (after a polite lead-in such as "please", "can you", "I need you to") with an action verb, and
that verb's kind of object follows in the same clause:

- destroy: delete / drop / wipe / purge / remove / shut down … production, a database, a server, backups,
  user accounts, a repository or branch
- deploy: deploy / release / roll out / push / merge / migrate … to production, live, main (a bare
  "deploy" of software, "deploy it", "deploy v2.3", counts unless it names a target such as staging)
- money: send / transfer / pay / wire / refund / buy … a payment, funds, fees, an amount, shares
- secrets: rotate / revoke / change / share / post … credentials, passwords, secrets, keys, tokens
- privileges: grant / give / revoke / elevate … admin access, root, permissions, ownership
- commands: run / execute … `rm -rf`, `DROP TABLE`, `terraform destroy`, `git push --force` and the like
- whole phrases whose verb is too common alone: "make a payment", "place an order", "make X an admin",
  "use my credit card"

Questions about how to do a thing, explanations, or writing code that would do it are not actions and
are not flagged. Pure functions of the text; bounded work for any length (of a long task only the head
and tail, where instructions sit, are read).
"""

from __future__ import annotations

import re

# A task longer than this carries a document; only its head and tail are read, where instructions sit
# (a contract that says "the parties shall pay the fees" asks nothing of anyone).
_SHORT = 2_000
_HEAD = 600
_TAIL = 400
_MAX_CUE = 80

# Split points between clauses: sentence ends, semicolons, line breaks, commas, and "and"/"then" when an
# action verb follows (so "summarise this and delete the database" yields the second request).
_VERB_WORDS = (
    r"delete|drop|truncate|wipe|purge|erase|destroy|remove|reset|overwrite|nuke|kill|terminate|shut ?down|"
    r"disable|force[- ]push|deprovision|tear down|deploy|release|ship|roll ?out|push|promote|merge|migrate|"
    r"roll ?back|revert|restart|reboot|launch|publish|send|transfer|pay|wire|refund|charge|withdraw|deposit|"
    r"approve|process|execute|issue|initiate|authori[sz]e|move|buy|purchase|sell|trade|invest|donate|book|"
    r"rotate|revoke|grant|give|change|update|share|expose|reveal|leak|post|commit|elevate|escalate|assign|"
    r"regenerate|make|place|add|run|apply"
)
_SPLIT = re.compile(rf"[.!?;]+(?=\s|$)\s*|\n+|,\s+|\b(?:and|or|then|and then)\s+(?=(?:{_VERB_WORDS})\b)")
_LIST_MARK = re.compile(r"^\s*(?:[-*•>]+|\(?\d{1,2}[.)]|\(?[a-h][.)])\s+")
_LEAD_IN = re.compile(
    r"^(?:please|pls|kindly|now|then|and|also|so|ok(?:ay)?|just|right away|immediately|urgently|quickly|"
    r"finally|first|next|go ahead and|proceed to|can you|could you|would you|will you|can we|"
    r"you (?:should|must|need to|have to)|i (?:need|want|would like|'d like) (?:you )?to|"
    r"we (?:need|have|want|must) to|let'?s|help me|make sure (?:to|you)|"
    r"i(?:'ve| have)? (?:decided|resolved|plan|intend|want) to|i am going to|i'm going to|"
    r"(?:hey|hi|hello)(?: \w+)?)\b[\s,:]*"
)

_PRODUCTION = r"prod(?:uction)?\b|live (?:site|system|server|environment|database|data|traffic)"
_DESTROY_VERBS = (
    r"delete|drop|truncate|wipe|purge|erase|destroy|remove|reset|overwrite|nuke|kill|terminate|shut ?down|"
    r"disable|force[- ]push|deprovision|tear down"
)
_DESTROY_OBJECTS = (
    rf"{_PRODUCTION}|databases?\b|db\b|schemas?\b|buckets?\b|clusters?\b|servers?\b(?!-)|instances?\b|vms?\b|"
    r"backups?\b|repo(?:sitory|sitories|s)?\b|(?:main|master|release) branch|user accounts?|accounts\b|"
    r"customer (?:data|records|accounts)|all (?:the )?(?:users|records|data|files|customers|accounts|tables|rows)|"
    r"everything\b|firewall|two-factor|2fa\b|mfa\b|audit logs?"
)
_DEPLOY_VERBS = r"deploy|release|ship|roll ?out|push|promote|merge|migrate|roll ?back|revert|restart|reboot|launch"
_DEPLOY_OBJECTS = (
    rf"{_PRODUCTION}|\blive\b|(?:to|into|on) (?:main|master)\b|all (?:users|customers|servers)|customers\b"
)
_NON_PRODUCTION = re.compile(r"\b(?:staging|dev|development|test|testing|local(?:host)?|sandbox|preview|qa)\b")
_MONEY_VERBS = (
    r"send|transfer|pay|wire|refund|charge|withdraw|deposit|approve|process|execute|issue|initiate|"
    r"authori[sz]e|move|buy|purchase|sell|trade|invest|donate|book"
)
_MONEY_OBJECTS = (
    r"payments?\b|money\b|funds\b|[$€£]\s?\d|\d[\d,.]*\s?(?:dollars|euros|usd|eur|gbp|pounds|btc|eth)\b|"
    r"invoices?\b|fees?\b|wire\b|refunds?\b|transactions?\b|bank\b|salar(?:y|ies)\b|payroll\b|bitcoin|crypto|"
    r"shares\b|stocks?\b|credit card|debit card|purchase\b"
)
_SECRET_VERBS = (
    r"rotate|revoke|change|reset|update|share|expose|publish|reveal|leak|post|commit|send|email|print|disable|"
    r"remove|delete|regenerate|issue|transfer"
)
_SECRET_OBJECTS = (
    r"credentials?\b|passwords?\b|passphrases?\b|secrets\b|(?:secret|private|ssh|api|access|signing) keys?\b|"
    r"client secret|api[- ]?keys?\b|(?:access|auth|bearer|api|refresh|session|oauth) tokens?\b|certificates?\b"
)
_PRIVILEGE_VERBS = r"grant|give|revoke|remove|elevate|escalate|assign|change|transfer|disable|delete"
_PRIVILEGE_OBJECTS = (
    r"admin(?:istrator)? (?:access|rights|privileges|role|permissions|account)|root (?:access|password|user|account)|"
    r"sudo\b|superuser|permissions?\b|privileges?\b|iam (?:role|polic)|ownership\b"
)
_COMMANDS = (
    r"rm -rf|drop (?:table|database|schema)|truncate table|delete from|terraform destroy|kubectl delete|"
    r"git push (?:--force|-f)|mkfs|dd if="
)
_PHRASES = (
    # Whole requests whose verb is too common to be a cue on its own ("make", "place", "add").
    r"make (?:a |the |this |my )?(?:payment|transfer|purchase|deposit|withdrawal|wire)|"
    r"place (?:a|an|the|my|this) (?:\w+ )?(?:order|trade|bet)|"
    r"(?:use|utili[sz]e|charge) (?:my|our|the) (?:\w+ )?(?:credit|debit) card|"
    r"(?:make|add) \S+(?: \S+)? (?:an? )?admin(?:istrator)?\b|add \S+(?: \S+)? (?:as|to the) admins?\b"
)


def _kind(verbs: str, objects: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(rf"(?:{verbs})\b"), re.compile(objects)


_KINDS = (
    _kind(_DESTROY_VERBS, _DESTROY_OBJECTS),
    _kind(_DEPLOY_VERBS, _DEPLOY_OBJECTS),
    _kind(_MONEY_VERBS, _MONEY_OBJECTS),
    _kind(_SECRET_VERBS, _SECRET_OBJECTS),
    _kind(_PRIVILEGE_VERBS, _PRIVILEGE_OBJECTS),
    _kind(r"run|execute|exec|apply", _COMMANDS),
)
_PHRASE = re.compile(_PHRASES)
# A bare "deploy X" is critical when X is software (an essay can "deploy metaphors").
_BARE_DEPLOY = re.compile(
    r"(?:deploy|roll ?out)\b(?: \S+){0,3}? (?:it|this|that|the (?:\S+ )?(?:app|application|service|api|site|website|"
    r"build|version|release|code|changes|update|hotfix|patch|model|contract|stack|infrastructure|containers?|image|"
    r"function|backend|frontend)|v?\d+\.\d+\S*)\b"
)


def critical_actions(task: str) -> tuple[str, ...]:
    """The clauses of `task` that ask for a critical action (each cut after its object), or () if none."""
    text = task if len(task) <= _SHORT else task[:_HEAD] + "\n" + task[-_TAIL:]
    found: list[str] = []
    for raw in _SPLIT.split(text.lower()):
        clause = _request(raw)
        cue = _clause_cue(clause) if clause else None
        if cue and cue not in found:
            found.append(cue)
    return tuple(found)


def _request(clause: str) -> str:
    """The clause without list markers and polite lead-ins, so that it starts with its verb if it has one."""
    clause = _LIST_MARK.sub("", clause.strip())
    while True:
        stripped = _LEAD_IN.sub("", clause, count=1)
        if stripped == clause:
            return clause.strip(" \"'`*_")
        clause = stripped


def _clause_cue(clause: str) -> str | None:
    phrase = _PHRASE.match(clause)
    if phrase:
        return _cut(clause)
    for verbs, objects in _KINDS:
        verb = verbs.match(clause)
        if verb is None:
            continue
        obj = objects.search(clause, verb.end())
        if obj is not None:
            return _cut(clause)
    if _BARE_DEPLOY.match(clause) and not _NON_PRODUCTION.search(clause):
        return _cut(clause)
    return None


def _cut(clause: str) -> str:
    cue = clause.strip()  # the whole request: a clause is short, and the object's noun phrase ends it
    return cue if len(cue) <= _MAX_CUE else cue[: _MAX_CUE - 1].rstrip() + "…"
