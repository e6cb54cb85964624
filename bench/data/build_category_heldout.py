"""Rebuild bench/data/category_heldout.jsonl, mechanically, from pinned snapshots of public repositories.

Every item is read with `git show <commit>:<path>` from the commits pinned in SOURCES, so a bare clone (or any
clone holding those commits) reproduces the committed file byte for byte. Each source's pool is every item of
its file minus any item whose id is in dev.jsonl and any prompt whose normalised text is in dev.jsonl, in
tests/data/*.jsonl (but tool_need_heldout4.jsonl) or already drawn; a fixed-seed sample
(`random.Random("20261203:<key>")`) is drawn from it. Nothing is chosen by looking at an analyser. Only sources
whose underlying text may be redistributed are read (see README.md).

    python bench/data/build_category_heldout.py SNAPSHOTS [--dev DEV.jsonl] [--check]

SNAPSHOTS holds one git directory per repository, named `owner+name` (with the git data in it or in its
`repo/` sub-folder). `--check` compares with the committed file instead of writing it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "data" / "category_heldout.jsonl"
SEED = 20261203

# repository -> pinned commit (the snapshots read when the set was built).
SOURCES = {
    "lm-sys/FastChat": "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
    "openai/grade-school-math": "3101c7d5072418e28b9008a6636bde82a006892c",
    "wulei20/AML_HW4_Infer": "1460fcce590211503876311be7fdb1103117afd4",
    "ctlllll/LLM-ToolMaker": "4169219e4966253b6ec0928876a2bccfdc3cdbd3",
    "openai/human-eval": "6d43fb980f9fee3c892a914eda09951f772ad10d",
    "muitiiifruckt/ASE": "83fa3f7963561b898623e8ade6e017d448ddca98",
    "lm-sys/RouteLLM": "0b64fdafe049e596a3f5657c219329f24af24198",
    "ShishirPatil/gorilla": "6ea57973c7a6097fd7c5915698c54c17c5b1b6c8",
    "yizhongw/self-instruct": "0b26ccaa415992100fa32df62d41b994cf928e23",
    "karpathy/char-rnn": "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e",
}

# Built at the same time, blind, from the same sources and never tuned on: sharing a prompt with it is harmless.
NOT_EXCLUDED = {"tool_need_heldout4.jsonl"}

Item = dict[str, str]


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class Snapshots:
    """Reads files at the pinned commits from a folder of git directories."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def git(self, repo: str, *args: str) -> bytes:
        here = self.folder / repo.replace("/", "+")
        git_dir = here / "repo" if (here / "repo").is_dir() else here
        run = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
        if run.returncode:
            sys.exit(f"cannot read {repo} at {SOURCES[repo]} from {git_dir}: {run.stderr.decode().strip()}")
        return run.stdout

    def read(self, repo: str, path: str) -> str:
        return self.git(repo, "show", f"{SOURCES[repo]}:{path}").decode("utf-8")

    def names(self, repo: str, folder: str) -> list[str]:
        return sorted(self.git(repo, "ls-tree", "--name-only", SOURCES[repo], folder).decode().split())


class Sampler:
    """Draws fixed-seed samples from pools with held-back prompts removed; a drawn prompt is held back too."""

    def __init__(self, dev: list[dict[str, Any]], tests_data: list[Path]) -> None:
        self.dev_ids = {d["id"] for d in dev}
        self.excluded = {normalised(d["prompt"]) for d in dev}
        for path in tests_data:
            self.excluded |= {normalised(json.loads(line)["prompt"]) for line in lines(path.read_text("utf-8"))}
        self.rows: list[dict[str, str]] = []

    def take(self, pool: list[Item], k: int, key: str, source: str, licence: str) -> None:
        fresh = [i for i in pool if i["id"] not in self.dev_ids and normalised(i["prompt"]) not in self.excluded]
        chosen = random.Random(f"{SEED}:{key}").sample(fresh, min(k, len(fresh)))
        for item in chosen:
            self.excluded.add(normalised(item["prompt"]))
            self.rows.append(
                {
                    "id": item["id"],
                    "prompt": item["prompt"],
                    "category": item["category"],
                    "source": source,
                    "source_category": item["source_category"],
                    "license": licence,
                }
            )


def lines(text: str) -> Iterator[str]:
    return (line for line in text.splitlines() if line.strip())


def item(id_: str, prompt: str, category: str, source_category: str) -> Item:
    return {"id": id_, "prompt": prompt, "category": category, "source_category": source_category}


MT_BENCH = {
    "writing": "text_generation",
    "roleplay": "text_generation",
    "reasoning": "deep_reasoning",
    "math": "deep_reasoning",
    "coding": "complex_coding",
    "extraction": "classification",
    "stem": "qa_retrieval",
    "humanities": "qa_retrieval",
}


def mt_bench(s: Snapshots, take: Sampler) -> None:
    pool = []
    for line in lines(s.read("lm-sys/FastChat", "fastchat/llm_judge/data/mt_bench/question.jsonl")):
        q = json.loads(line)
        pool.append(item(f"mt_bench:{q['question_id']}", q["turns"][0], MT_BENCH[q["category"]], q["category"]))
    take.take(pool, 80, "mt_bench", "mt_bench", "Apache-2.0 (lm-sys/FastChat)")


def maths(s: Snapshots, take: Sampler) -> None:
    text = s.read("openai/grade-school-math", "grade_school_math/data/test.jsonl")
    pool = [
        item(f"gsm8k:test-{n}", json.loads(line)["question"], "deep_reasoning", "grade_school_math_test")
        for n, line in enumerate(lines(text))
    ]
    take.take(pool, 10, "gsm8k", "gsm8k", "MIT (openai/grade-school-math)")
    pool = []
    for line in lines(s.read("wulei20/AML_HW4_Infer", "data/math500/test1.jsonl")):
        q = json.loads(line)
        uid = q["unique_id"].removesuffix(".json").replace("/", "_")
        pool.append(item(f"math500:{uid}", q["problem"], "deep_reasoning", f"{q['subject']} (Level {q['level']})"))
    licence = "MIT (MATH, Hendrycks et al.; MATH500 split from openai/prm800k, MIT)"
    take.take(pool, 10, "math500", "math500", licence)


# The BBH paper's algorithmic tasks plus formal_fallacies (which dev.jsonl draws on); the copy's three non-BBH
# tasks and the NLU group are left out.
BBH_TASKS = (
    "boolean_expressions",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "reasoning_about_colored_objects",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
)


def bbh(s: Snapshots, take: Sampler) -> None:
    pool = []
    for task in BBH_TASKS:
        for n, ex in enumerate(json.loads(s.read("ctlllll/LLM-ToolMaker", f"bbh/{task}.json"))["examples"]):
            pool.append(item(f"bbh:{task}-{n}", ex["input"], "deep_reasoning", task))
    take.take(pool, 12, "bbh", "bbh", "MIT (suzgun/BIG-Bench-Hard; tasks from BIG-bench, Apache-2.0)")


def coding(s: Snapshots, take: Sampler) -> None:
    raw = s.git("openai/human-eval", "show", f"{SOURCES['openai/human-eval']}:data/HumanEval.jsonl.gz")
    pool = []
    for line in lines(gzip.decompress(raw).decode("utf-8")):
        q = json.loads(line)
        prompt = f"Complete the following Python function:\n\n```python\n{q['prompt']}```"
        pool.append(item(f"humaneval:{q['task_id'].split('/')[1]}", prompt, "complex_coding", "HumanEval"))
    take.take(pool, 20, "humaneval", "humaneval", "MIT (openai/human-eval)")
    pool = []
    for line in lines(s.read("muitiiifruckt/ASE", "mbpp.jsonl")):
        q = json.loads(line)
        if 11 <= q["task_id"] <= 510:  # the test split
            prompt = f"{q['text']} Your code should pass these tests:\n\n" + "\n".join(q["test_list"])
            pool.append(item(f"mbpp:{q['task_id']}", prompt, "complex_coding", "mbpp_test"))
    take.take(pool, 20, "mbpp", "mbpp", "CC-BY-4.0 (google-research/google-research mbpp)")


MMLU_REASONING = {
    "abstract_algebra",
    "college_mathematics",
    "elementary_mathematics",
    "high_school_mathematics",
    "high_school_statistics",
    "formal_logic",
}


def mmlu(s: Snapshots, take: Sampler) -> None:
    reasoning: list[Item] = []
    qa: list[Item] = []
    for path in s.names("lm-sys/RouteLLM", "routellm/evals/mmlu/responses/"):
        subject = Path(path).stem.removeprefix("mmlu_")
        hard = subject in MMLU_REASONING
        for n, rec in enumerate(csv.DictReader(io.StringIO(s.read("lm-sys/RouteLLM", path)))):
            got = item(f"mmlu:{subject}-{n}", rec["prompt"], "deep_reasoning" if hard else "qa_retrieval", subject)
            (reasoning if hard else qa).append(got)
    licence = "MIT (hendrycks/test); prompts+per-model results via lm-sys/RouteLLM, Apache-2.0"
    take.take(reasoning, 6, "mmlu-reasoning", "mmlu", licence)
    take.take(qa, 20, "mmlu-qa", "mmlu", licence)


def bfcl(s: Snapshots, take: Sampler) -> None:
    for name, k in {"web_search": 10, "multi_turn_base": 10, "memory": 7, "live_multiple": 9, "live_simple": 4}.items():
        pool = []
        path = f"berkeley-function-call-leaderboard/bfcl_eval/data/BFCL_v4_{name}.json"
        for line in lines(s.read("ShishirPatil/gorilla", path)):
            q = json.loads(line)
            first = next(m["content"] for m in q["question"][0] if m["role"] == "user")  # the user's first turn
            pool.append(item(f"bfcl:{q['id']}", first, "agentic_tool_use", name))
        take.take(pool, k, f"bfcl-{name}", "bfcl", "Apache-2.0 (ShishirPatil/gorilla, BFCL)")


# P3/T0 templates dev.jsonl uses whose underlying dataset is redistributable (README.md lists the licence of
# every template dev.jsonl uses and why the others are left out): template -> (category, task kind, k, licence).
P3 = {
    "dbpedia_14_given_list_what_category_does_the_paragraph_belong_to": (
        "classification",
        "topic_classification",
        16,
        "CC-BY-SA-3.0 (DBpedia/Wikipedia text)",
    ),
    "paws_labeled_final_Meaning": (
        "classification",
        "paraphrase_identification",
        17,
        "PAWS-Wiki: free for any purpose, from Google LLC (google-research-datasets/paws); Wikipedia sentences, "
        "CC-BY-SA",
    ),
    "kilt_tasks_hotpotqa_straighforward_qa": (
        "qa_retrieval",
        "closed_book_qa",
        12,
        "CC-BY-SA-4.0 (HotpotQA questions; KILT, MIT)",
    ),
}


def p3(s: Snapshots, take: Sampler) -> None:
    for template, (category, kind, k, licence) in P3.items():
        text = s.read("yizhongw/self-instruct", f"data/finetuning/t0_train_50k/data_per_template/{template}.jsonl")
        pool = [
            item(f"p3_t0:{template}-{n}", json.loads(line)["prompt"].strip(), category, f"{kind}:{template}")
            for n, line in enumerate(lines(text))
        ]
        repo = "prompt via yizhongw/self-instruct (Apache-2.0)"
        take.take(pool, k, f"p3-{template}", "p3_t0", f"{licence}; {repo}")


ASKS = (
    "Summarise the following excerpt from a play: the plot, the main speakers and what each of them wants.",
    "Read the whole text below and list every character who speaks, with one sentence on their role.",
    "Write a scene-by-scene synopsis of the following document, quoting one key line from each scene.",
)


def shakespeare(s: Snapshots, take: Sampler) -> None:
    """long_document by construction: 12k-30k-character excerpts cut at speech boundaries, one fixed instruction
    before the text or after it (LEval, dev.jsonl's long-document source, is GPL-3.0)."""
    play = s.read("karpathy/char-rnn", "data/tinyshakespeare/input.txt")
    starts = [m.end() for m in re.finditer(r"\n\n", play)]
    rng = random.Random(f"{SEED}:shakespeare")
    for n in range(18):
        begin = rng.choice(starts[: len(starts) - 2000])
        end = play.find("\n\n", begin + rng.randint(12_000, 30_000))
        doc, ask = play[begin:end].strip(), ASKS[n % 3]
        prompt = f"{ask}\n\n{doc}" if n % 2 == 0 else f"Document is as follows.\n\n{doc}\n\n{ask}"
        take.rows.append(
            {
                "id": f"shakespeare:{begin}-{end}",
                "prompt": prompt,
                "category": "long_document",
                "source": "shakespeare_excerpt",
                "source_category": "long_document (constructed)",
                "license": "public domain text (Shakespeare, via karpathy/char-rnn tinyshakespeare, MIT repo)",
            }
        )


STEPS: tuple[Callable[[Snapshots, Sampler], None], ...] = (mt_bench, maths, bbh, coding, mmlu, bfcl, p3, shakespeare)


def build(snapshots: Path, dev_path: Path) -> str:
    dev = [json.loads(line) for line in lines(dev_path.read_text("utf-8"))]
    held_back = [p for p in sorted((ROOT / "tests" / "data").glob("*.jsonl")) if p.name not in NOT_EXCLUDED]
    take = Sampler(dev, held_back)
    for step in STEPS:
        step(Snapshots(snapshots), take)
    assert len({r["id"] for r in take.rows}) == len(take.rows)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in take.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshots", type=Path, help="folder of git directories named owner+name")
    parser.add_argument(
        "--dev",
        type=Path,
        default=ROOT.parent / "shared" / "eval" / "dev.jsonl",
        help="dev.jsonl, whose prompts and ids are kept out (default: ../shared/eval/dev.jsonl)",
    )
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args()
    text = build(args.snapshots, args.dev)
    if args.check:
        same = OUT.is_file() and OUT.read_text("utf-8") == text
        print(f"{OUT.relative_to(ROOT)}: {'identical to' if same else 'DIFFERS from'} the rebuilt set")
        sys.exit(0 if same else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} items to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
