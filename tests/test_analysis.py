"""The built-in analyser: categories, complexity, token estimates, determinism and bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.analysis.features import estimate_tokens
from server.analysis.local import ANALYZER_VERSION, analyze_task
from server.analysis.prefilter import PrefixIndex, prefixes_of
from server.domain.tasks import LONG_CONTEXT_TOKENS, Category
from server.errors import InvalidTask


@pytest.mark.parametrize(
    ("task", "category"),
    [
        ("What is the capital of France?", Category.QA_RETRIEVAL),
        ("Write a Python function that returns the n-th Fibonacci number. Your code should pass these tests:\n"
         "assert fib(10) == 55", Category.COMPLEX_CODING),
        ("Prove that there are infinitely many primes.", Category.DEEP_REASONING),
        ("Classify the sentiment of this review as positive or negative: 'Cold food, rude staff.'",
         Category.CLASSIFICATION),
        ("Write a short, warm email inviting the team to Friday's launch party.", Category.TEXT_GENERATION),
        ("Book me a flight from JFK to Portland on April 20th and send the confirmation to my email.",
         Category.AGENTIC_TOOL_USE),
        ("Build a semantic search index: embed these 10,000 support tickets for cosine similarity lookups.",
         Category.EMBEDDING),
    ],
)  # fmt: skip
def test_categories_of_typical_tasks(task: str, category: Category) -> None:
    assert analyze_task(task).category is category


@pytest.mark.parametrize(
    ("task", "category"),
    [
        # Pasted content does not vote: a booking inside a dialogue to summarise is not a booking to make.
        ("Summarize this dialogue: Ana: I booked the hotel and bought the train tickets yesterday.\n"
         "Ben: Great, can you send me the reservation?\nAna: Sure, tonight.", Category.TEXT_GENERATION),
        # A question about a text handed over with it is reading comprehension.
        ("Given this reference text about the bridge, when did it open to traffic?\n\nThe Forth Bridge is a "
         "cantilever railway bridge in Scotland. Construction began in 1882 and it opened on 4 March 1890.",
         Category.QA_RETRIEVAL),
        ("Act as a travel guide. I will tell you where I am and you will suggest three places nearby to visit, "
         "with a sentence on each.", Category.TEXT_GENERATION),
        ("A bag holds 3 red and 5 green marbles. If two are drawn at random, what is the probability that both "
         "are green?", Category.DEEP_REASONING),
        ("Which of the following is the derivative of f(x) = x^3 + 2x at x = 1?\nA. 3\nB. 5\nC. 6\nD. 2\nAnswer:",
         Category.DEEP_REASONING),
        ("Which of the following cities is the capital of Australia?\nA. Sydney\nB. Melbourne\nC. Canberra\n"
         "D. Perth\nAnswer:", Category.QA_RETRIEVAL),
        ("Is this review happy or unhappy? The battery died after two days and support never replied.\n"
         "Pick one: happy, unhappy.", Category.CLASSIFICATION),
        ("The shelf holds these fruits and vegetables: apple, leek, pear, carrot and plum. First, group the items "
         "into fruits and vegetables.", Category.CLASSIFICATION),
        ("Name three novels by Jane Austen.", Category.QA_RETRIEVAL),
        ("Let \\(A = \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}\\). Compute the determinant of A.",
         Category.DEEP_REASONING),
        # Narrative that mentions dividing something is not a request to classify.
        ("A developer plans to divide the land into 40 lots and sell them. Which legal doctrine governs the "
         "restrictive covenants?\nA. Easement\nB. Equitable servitude\nC. Adverse possession\nD. Laches\nAnswer:",
         Category.QA_RETRIEVAL),
    ],
)  # fmt: skip
def test_generic_cues_for_intent_over_topic(task: str, category: Category) -> None:
    assert analyze_task(task).category is category


@pytest.mark.parametrize(
    ("task", "category", "kinds"),
    [
        # An intro followed on the same line by the task itself introduces nothing: the task is read.
        ("Answer the following question: If a train travels 120 km in 2 hours, how far does it go in 5 hours "
         "at the same speed?", Category.DEEP_REASONING, ()),
        ("Do the following task: implement a thread-safe LRU cache in Python with unit tests.",
         Category.COMPLEX_CODING, ()),
        ("Use the following tool: search the web for today's weather in Paris.", Category.AGENTIC_TOOL_USE,
         ("search",)),
        ("Check the following URL: https://example.com/report and summarise it.", Category.AGENTIC_TOOL_USE,
         ("fetch",)),
    ],
)  # fmt: skip
def test_an_intro_on_the_tasks_own_line_does_not_hide_the_task(
    task: str, category: Category, kinds: tuple[str, ...]
) -> None:
    analysis = analyze_task(task)
    assert (analysis.category, analysis.tool_kinds) == (category, kinds)


def test_a_task_that_asks_for_tools_is_tool_use_whatever_its_topic() -> None:
    analysis = analyze_task("Use Python to compute 6*7*1000+1 and tell me the result.")
    assert analysis.category is Category.AGENTIC_TOOL_USE and analysis.tool_kinds == ("code",)
    assert "asks for tools" in analysis.reasons[0]
    # Code to write keeps its category (its model is offered the tools too); a maths question without a tool
    # request stays maths.
    assert analyze_task("Write a Python function that merges two sorted lists, then run it on [1, 3] and "
                        "[2] and show me what it prints.").category is Category.COMPLEX_CODING  # fmt: skip
    assert analyze_task("What is 6*7*1000+1?").category is not Category.AGENTIC_TOOL_USE


def test_long_documents_are_flagged_and_estimated() -> None:
    document = "Document is as follows. " + "The committee reviewed the budget line by line. " * 5000
    analysis = analyze_task(document + "\nSummarise the document's main decisions.")
    assert analysis.category is Category.LONG_DOCUMENT
    assert analysis.estimated_input_tokens > LONG_CONTEXT_TOKENS and analysis.requires_long_context


def test_history_adds_to_the_input_estimate() -> None:
    assert analyze_task("hi there", history_tokens=900).estimated_input_tokens >= 900 + estimate_tokens("hi there")


def test_token_estimates_handle_cjk_and_code() -> None:
    assert estimate_tokens("你好世界" * 100) >= 400  # about one token per CJK character
    assert 90 <= estimate_tokens("x = compute(a, b)\n" * 20) <= 110


def test_complexity_tracks_difficulty() -> None:
    easy = analyze_task("Translate 'cat' into French.")
    hard = analyze_task("Design a distributed, fault-tolerant consensus protocol with a rigorous proof of safety, "
                        "then implement it in Rust with comprehensive tests.")  # fmt: skip
    assert easy.complexity == 1 and hard.complexity >= 4 and hard.strong_score > easy.strong_score


def test_deterministic_with_reasons() -> None:
    task = "Compare quicksort and mergesort for nearly sorted input and explain the trade-offs."
    first = analyze_task(task)
    assert all(analyze_task(task) == first for _ in range(5))
    assert first.reasons and first.analyzer == "local"


@pytest.mark.parametrize("task", ["", "   \n\t "])
def test_empty_task_is_refused_clearly(task: str) -> None:
    with pytest.raises(InvalidTask, match="task is empty"):
        analyze_task(task)


def test_a_two_megabyte_task_is_analysed_as_a_long_document() -> None:
    analysis = analyze_task("lorem ipsum dolor sit amet " * 80_000)  # its speed is measured in bench/
    assert analysis.requires_long_context


def test_prefilter_is_a_necessary_condition() -> None:
    needed = prefixes_of(r"\b(what is|who was)\b|\bsummari[sz]e|^\W*(please )?(book|order)")
    assert needed is not None
    present = PrefixIndex([needed]).present
    assert not needed.isdisjoint(present("so what is this"))
    assert not needed.isdisjoint(present("please summarise it"))
    assert not needed.isdisjoint(present("order a pizza"))
    assert needed.isdisjoint(present("the weather is nice"))
    assert prefixes_of(r"```(python)?\n") is None  # no literal word: always tried


# Boundary cases for the hand-checked word boundary and the per-branch split, and prompts touching many cues.
CUE_TEXTS = [
    "write a python function that parses a csv file, with unit tests",
    "rewrite this paragraph",
    "xwrite a function",
    "re-write the code",
    "_list the files",
    "list all the files",
    "please book a flight to paris tomorrow",
    "book: the hobbit",
    "what is the capital of france?",
    "summarise the following meeting notes in three bullet points",
    "classify the sentiment: i loved it",
    "prove that the square root of 2 is irrational",
    "solve for x: 3x + 5 = 20",
    "who is the current ceo of apple",
    "translate 'good morning' into german",
    "```python\ndef f(x):\n    return x\n```\nfix the bug",
    "if all bloops are razzies, then are all razzies bloops? answer yes or no",
    "as of 2025, what is the latest",
    "brainstorm ten names for a bakery",
    "review: the food was cold\nrating of this review:",
    "categories: sports, politics\ntext: the match ended 2-1",
    "i need to book a table for two at 7pm",
    "what did i tell you about my sister's birthday?",
    "calculate the derivative of x^2 sin(x)",
    "e-mail my landlord about the broken heater",
    "not ( true ) and false is",
    "a\nb\nc" * 40,
    "",
]


def test_every_cue_matches_exactly_where_its_plain_regex_does() -> None:
    from server.analysis import local

    for _, cue, _ in local._CUES:
        plain = re.compile(cue.pattern)
        for text in CUE_TEXTS:
            assert cue.search(text) == bool(plain.search(text)), (cue.pattern[:60], text[:40])


def test_the_prefix_index_never_skips_a_cue_that_matches() -> None:
    from server.analysis import local

    for text in CUE_TEXTS:
        brute = {i for i, (_, cue, _) in enumerate(local._CUES) if re.search(cue.pattern, text)}
        assert local._matched_cues(text) == brute, text[:40]


def test_the_core_install_without_numpy_routes_with_the_rules(tmp_path: Path) -> None:
    """`pip install mcp-model-router` (no extras) has no numpy: the server and the CLI must still import and the
    rules answer. Run in a child whose imports of numpy and the [learned] packages fail."""
    code = (
        "import sys\n"
        "for name in ('numpy', 'wordllama', 'sklearn', 'scipy'): sys.modules[name] = None\n"
        "import anyio, server.mcp.app, server.cli.main\n"
        "from server.analysis.analyzers import load_analyzer\n"
        "from server.domain.config import load_config\n"
        f"analyzer = load_analyzer(load_config(env={{'MODEL_ROUTER_HOME': {str(tmp_path)!r}}}))\n"
        "result = anyio.run(analyzer.analyze, 'Use Python to compute 6*7*1000+1 and tell me the result.')\n"
        "print(analyzer.version, result.category.value, ','.join(result.tool_kinds))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [ANALYZER_VERSION, "agentic_tool_use", "code"]
