"""bench/data/category_heldout.jsonl is a well-formed held-out set: the dev schema, valid categories, a
redistributable licence on every line, and no prompt from dev.jsonl or tests/data (else it would not be held out)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from server.analysis.metrics import load_labelled
from server.domain.tasks import Category

ROOT = Path(__file__).parents[1]
HELDOUT = ROOT / "bench" / "data" / "category_heldout.jsonl"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
FIELDS = {"id", "prompt", "category", "source", "source_category", "license"}


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def test_every_line_has_the_dev_schema_with_non_empty_strings_and_a_unique_id() -> None:
    items = rows(HELDOUT)
    assert len(items) >= 200
    for item in items:
        assert set(item) == FIELDS, item.get("id")
        assert all(isinstance(item[f], str) and item[f].strip() for f in FIELDS), item["id"]
    assert len({item["id"] for item in items}) == len(items)


def test_categories_are_the_routers_and_the_project_loader_reads_every_line_as_labelled() -> None:
    items = rows(HELDOUT)
    valid = {c.value for c in Category}
    assert {item["category"] for item in items} <= valid
    assert len(load_labelled(HELDOUT).categories) == len(items)


def test_each_source_template_names_one_licence_and_long_documents_are_long() -> None:
    licences: dict[tuple[str, str], set[str]] = {}
    for item in rows(HELDOUT):
        licences.setdefault((item["source"], item["source_category"].split(":")[-1]), set()).add(item["license"])
        if item["category"] == "long_document":
            assert len(item["prompt"]) > 10_000, item["id"]
    assert all(len(names) == 1 for names in licences.values()), licences


# Licences the set may not carry: the text is committed, so it must be redistributable (bench/data/README.md).
NOT_REDISTRIBUTABLE = re.compile(
    r"\bNC\b|\bND\b|non-?commercial|no-?deriv|their own licen|unknown|research only|LDC", re.I
)


def test_every_licence_is_a_redistributable_one() -> None:
    items = rows(HELDOUT)
    assert all(not NOT_REDISTRIBUTABLE.search(item["license"]) for item in items), {
        item["license"] for item in items if NOT_REDISTRIBUTABLE.search(item["license"])
    }
    # Of the P3 sub-datasets only these three have redistributable text (README lists each one's licence).
    kept = ("p3_t0:dbpedia_14_", "p3_t0:paws_labeled_final_", "p3_t0:kilt_tasks_hotpotqa_")
    p3 = [item["id"] for item in items if item["source"] == "p3_t0"]
    assert p3
    assert [i for i in p3 if not i.startswith(kept)] == []


def test_no_prompt_repeats_within_the_set_or_comes_from_tests_data() -> None:
    prompts = [normalised(item["prompt"]) for item in rows(HELDOUT)]
    assert len(set(prompts)) == len(prompts)
    # The tool-need sets the cues were written against must not reappear here; tool_need_heldout4 was built
    # blind at the same time from the same sources and never tuned on, so sharing a prompt with it is harmless.
    tuned_on = [path for path in (ROOT / "tests" / "data").glob("*.jsonl") if path.name != "tool_need_heldout4.jsonl"]
    used = {normalised(item["prompt"]) for path in tuned_on for item in rows(path)}
    assert not used & set(prompts)


@pytest.mark.skipif(not DEV.is_file(), reason=f"{DEV} is absent (the public eval data is not shipped)")
def test_no_prompt_or_id_comes_from_dev_jsonl() -> None:
    dev = rows(DEV)
    items = rows(HELDOUT)
    assert not {normalised(d["prompt"]) for d in dev} & {normalised(i["prompt"]) for i in items}
    assert not {d["id"] for d in dev} & {i["id"] for i in items}
