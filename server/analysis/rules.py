"""Weighted cue rules for the task categories: each cue is a compiled regex and the points it adds.

Kept as data so the rules read like a table and can be tuned without touching the scoring code.
"""

from __future__ import annotations

import re

from server.domain.tasks import Category

_WORD_CHAR = re.compile(r"\w")


class WordRegex:
    """A compiled pattern; one that is `\\b` then literal words is compiled without the `\\b`, which is
    checked by hand at each candidate match instead.

    A pattern that starts with literals lets the engine skip ahead to the characters that can begin a
    match, about three times faster than testing a word boundary at every position. Compiled on first use:
    compiling every cue at import would cost start-up ~40 ms, and most are rarely needed.
    """

    __slots__ = ("_bounded", "_compiled", "_source", "needed")

    def __init__(self, pattern: str) -> None:
        from server.analysis.prefilter import prefixes_of

        self.needed = prefixes_of(pattern)  # word prefixes one of which any match starts with (None: unknown)
        self._bounded = pattern.startswith("\\b") and self.needed is not None
        self._source = pattern[2:] if self._bounded else pattern
        self._compiled: re.Pattern[str] | None = None

    @property
    def _regex(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return self._compiled

    def _at_word_start(self, start: int, text: str) -> bool:
        return not self._bounded or start == 0 or not _WORD_CHAR.match(text, start - 1)

    def search(self, text: str) -> bool:
        found = self._regex.search(text)
        while found is not None:
            if self._at_word_start(found.start(), text):
                return True
            found = self._regex.search(text, found.start() + 1)
        return False

    def count(self, text: str) -> int:
        return sum(self._at_word_start(found.start(), text) for found in self._regex.finditer(text))


class _Anchored:
    """A cue's `^` branches, tried at the start of the text only (a MULTILINE `^` makes the engine try every
    position of a long text; `match` tries one)."""

    __slots__ = ("_compiled", "_source", "needed")

    def __init__(self, branches: list[str]) -> None:
        from server.analysis.prefilter import prefixes_of

        self.needed = prefixes_of("|".join(branches))
        self._source = "|".join(f"(?:{b[1:]})" for b in branches)
        self._compiled: re.Pattern[str] | None = None

    def search(self, text: str) -> bool:
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return self._compiled.match(text) is not None


class Cue:
    """A cue pattern split into its top-level branches, each with its own prefilter (`needed`).

    Matched against lower-cased text, so no IGNORECASE: it would double the cost of every search.
    """

    __slots__ = ("branches", "pattern")

    def __init__(self, pattern: str) -> None:
        from server.analysis.prefilter import _split_top

        self.pattern = pattern
        split = _split_top(pattern)
        anchored = [b for b in split if b.startswith("^")]
        floating: list[_Anchored | WordRegex] = [WordRegex(b) for b in split if not b.startswith("^")]
        self.branches = tuple(([_Anchored(anchored)] if anchored else []) + floating)

    def search(self, text: str) -> bool:
        return any(branch.search(text) for branch in self.branches)


def _cue(pattern: str) -> Cue:
    return Cue(pattern)


CODE_TARGET = (
    r"(function|class|method|program|script|code|snippet|api|endpoint|module|library|algorithm|query|regex|"
    r"unit tests?|test suite|implementation|cli|parser|decorator|microservice|bug|compiler|interpreter)"
)
TEXT_TARGET = (
    r"(e-?mail|letter|essay|story|poem|haiku|limerick|song|lyrics|blog|post|speech|article|tweet|slogan|"
    r"paragraph|cover letter|review|advertisement|ad copy|press release|announcement|toast|bio|biography|"
    r"description|script for|dialogue|outline|proposal|memo|newsletter|headline|title|tagline|invitation)"
)

CUES: dict[Category, list[tuple[Cue, float]]] = {
    Category.COMPLEX_CODING: [
        (
            _cue(
                rf"\b(write|implement|create|build|code|develop|fix|debug|refactor|optimi[sz]e|complete|port)\b"
                rf"[^.?!\n]{{0,60}}\b{CODE_TARGET}"
            ),
            4.0,
        ),
        (
            _cue(r"\byour code should pass|\bcomplete the following (python )?function"),
            5.0,
        ),
        (
            _cue(
                r"```(python|js|javascript|java|cpp|c\+\+|go|rust|ts|typescript|sql|bash|sh)?\s*\n\s*"
                r"(def|class|function|import|#include|public)"
            ),
            3.0,
        ),
        (
            _cue(
                r"\b(python|javascript|typescript|java|rust|golang|kotlin|swift|ruby|php|sql|bash|"
                r"haskell|scala|react|django|flask|pandas|numpy)\b"
            ),
            1.5,
        ),
        (
            _cue(
                r"\b(stack ?trace|traceback|exception|segfault|compile error|syntax error|runtime error|null pointer)\b"
            ),
            2.0,
        ),
        (
            _cue(
                r"\b(time complexity|big-?o|data structure|linked list|binary tree|hash ?map|dynamic programming|"
                r"recursion|sorting algorithm|leetcode)\b"
            ),
            2.0,
        ),
    ],
    Category.DEEP_REASONING: [
        (_cue(r"\b(prove|proof|derive|theorem|lemma|corollary|induction|contradiction)\b"), 3.0),
        (
            _cue(
                r"\b(solve|compute|calculate|evaluate|simplify|determine the value|find the (value|number|sum|"
                r"product|remainder|area|volume|probability|smallest|largest|greatest|least))\b"
            ),
            2.0,
        ),
        (
            _cue(
                r"\bwhat is (the|their|its) (probability|remainder|sum|product|value|difference|quotient|area|"
                r"perimeter|"
                r"volume|average|mean|median|expected|least|greatest|smallest|largest)\b"
            ),
            3.5,  # asks for a quantity to work out, which outweighs its being a question
        ),
        (
            _cue(
                r"\b(is the (father|mother|son|daughter|brother|sister|grandfather|uncle|aunt) of|"
                r"arranged in a fixed order|logically consistent|what is the colou?r of|how many (\w+ )?(are|is) "
                r"(left|remaining)|what('s| is) your (current )?position|if you (have )?just overtaken)"
            ),
            4.0,
        ),
        (
            _cue(
                r"\b(equation|integer|prime|polynomial|integral|derivative|matrix|vector|probability|remainder|"
                r"divided by|divisible|"
                r"modulo|factorial|sequence|series|fraction|percent|ratio|geometry|triangle|circle|radius)\b"
            ),
            1.2,
        ),
        (
            _cue(
                r"\b(logic puzzle|riddle|deduce|deductively valid|valid argument|syllogism|premises?|"
                r"paradox|step[- ]by[- ]step|reason(ing)? through|think carefully)\b"
            ),
            2.5,
        ),
        (_cue(r"\b(not|and|or)\s*\(\s*(true|false|not)|\b(true|false)\s+(and|or)\s+(true|false|not)\b"), 4.0),
        (_cue(r"\\begin\{(p|b|v)?matrix\}|\\begin\{(align|equation|cases|array)\*?\}|\\mathbf\{"), 3.0),  # LaTeX maths
        (_cue(r"\b(plan|strategy|trade-?offs?|pros and cons|what would happen if|implications)\b"), 0.8),
        (
            _cue(
                r"\b(shuffled|swap(ped)?|trade|switch) (their|partners|books|balls|positions)|"
                r"\bfinally,? .{0,40}\bhas\b|\btells the truth|\blies\.|\bnavigate|\btake \d+ steps?"
            ),
            3.0,
        ),
        (_cue(r"\b(mm/dd/yyyy|what is the date|which sentence is more plausible|sort the following words)\b"), 3.0),
    ],
    Category.LONG_DOCUMENT: [
        (
            _cue(
                r"\b(document is as follows|the following (document|paper|report|contract|transcript|article|"
                r"chapter|book)|attached (document|report|paper)|this (contract|paper|report|transcript))\b"
            ),
            3.0,
        ),
        (
            _cue(
                r"\b(summari[sz]e|analy[sz]e|review|synthesi[sz]e|extract) (this|the (whole|entire|full|following)) "
                r"(document|paper|report|contract|transcript|book|filing)\b"
            ),
            3.0,
        ),
    ],
    Category.AGENTIC_TOOL_USE: [
        (
            _cue(
                r"\b(search|look up|lookup|browse|google|seacrh|web search|search the web|search online|"
                r"using (your|the) tools?|use (your|the|a) tools?|call the (api|function|tool))\b"
            ),
            3.5,
        ),
        (
            _cue(
                r"^\W*(please\s+)?(book|reserve|order|buy|purchase|send|transfer|pay|schedule|play|turn (on|off|up|"
                r"down)|rent|cancel|delete|remove|move|copy|retrieve|fetch|download|upload|navigate to|check in|"
                r"log ?in|sign in|restart|deploy|install|search|find (me )?(a|an|some|the nearest|flights?|hotels?)|"
                r"look for|set (an?|the|my) (alarm|reminder|timer|thermostat|volume|status|budget))\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(list|show|display) (all )?(the )?(files|directories|folders|contents|items in)|"
                r"\b(new|the) (directory|folder) (named|called)|\bdo you have any|\bin stock|"
                r"\b(i|i've|i have) (previously )?(ordered|booked|bought|reserved|purchased)|\bmy (order|booking|"
                r"reservation|account|portfolio|watchlist|cart)\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(can|could|would) you (please )?(book|reserve|order|buy|send|transfer|pay|schedule|set|play|"
                r"turn|rent|cancel|create|delete|move|list|add|update|retrieve|fetch|find|search|get|start|lower|"
                r"raise|check|open|track|execute|run)\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(find|get|show) me\b|\bi need to (rent|book|find|buy|order|send|reserve)\b|"
                r"\bi('m| am) looking for (a|an|some)\b|\bi (want|would like) to (book|buy|order|listen|watch|rent|"
                r"reserve|send|transfer|fly|travel)\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(flight|hotel|reservation|alarm|reminder|timer|calendar|playlist|volume|thermostat|"
                r"directory|folder|file system|credit card|bank account|account balance|stock price|ticker|"
                r"shares of|weather (in|for|forecast)|restaurant|uber|taxi|ride|tickets?)\b"
            ),
            1.5,
        ),
        (
            _cue(
                r"\b(current|currently|latest|today'?s?|right now|this (week|month|year)|as of (\w+ )?20\d\d|"
                r"recent(ly)?|up-to-date|real-?time|live)\b"
            ),
            1.2,
        ),
        (_cue(r"\b20(2[4-9]|3\d)\b"), 2.0),
        (
            _cue(
                r"\b(did i|do i|have i|am i|was i|i (told|mentioned|said|planned|bought|have planned)|"
                r"my (personal|previous|last|usual|favorite|favourite)|remember|recall|you (told|gave) me)\b"
            ),
            2.5,
        ),
        (_cue(r"\b(as of|in|since|during) (\w+ )?20(2[3-9])\b|\bthe (20(2[3-9]))\b"), 1.5),
        (_cue(r"\b(api key|access token|user ?id|account id|card_\w+|id=\w+|json format|respond in json)\b"), 1.5),
        (
            _cue(
                r"\b(who is the (current )?(spouse|wife|husband|mayor|president|ceo|governor|founder)|"
                r"(spouse|mayor|president|founder|governor) of the (city|college|university|company|country) "
                r"(where|that|which|attended))\b"
            ),
            3.0,
        ),
    ],
    Category.QA_RETRIEVAL: [
        (_cue(r"^\W*(who|what|when|where|which|why|how)\b"), 1.0),
        (
            _cue(
                r"^\W*(who|what|when|where|which|why|how|is|are|was|were|does|do|did|can|could|should|"
                r"name|define|explain|describe|tell me)\b[^\n]{0,300}\?"
            ),
            2.0,
        ),
        (
            _cue(
                r"\b(what is|what are|what was|who was|who is|who were|when did|where is|why do|why does|"
                r"why is|how does|how do|define|definition of|meaning of|explain|describe|difference between)\b"
            ),
            1.5,
        ),
        (
            _cue(
                r"\b(history|capital of|invented|discovered|located|population|famous|known for|originate|"
                r"according to)\b"
            ),
            1.0,
        ),
        (
            # Naming the works of a person or group is recalling facts, not writing.
            _cue(
                r"^\W*(please\s+)?(list|name)\s+(\w+\s+)?(titles|books|novels|songs|albums|films|movies|works|plays|"
                r"poems|paintings)\s+(by|of|from|written|directed)\b"
            ),
            3.0,
        ),
        (
            # A question about a text handed over with it is reading comprehension, not extraction.
            _cue(
                r"\bgiven (this|the|a) (reference )?(text|paragraph|passage|article)[^?\n]{0,150}\b(who|when|what|"
                r"where|which|why|how|is|are|was|were|does|did|do|can)\b[^\n]{0,200}\?"
            ),
            3.0,
        ),
    ],
    Category.TEXT_GENERATION: [
        (_cue(rf"\b(write|draft|compose|create|generate|craft|produce|pen)\b[^.?!\n]{{0,60}}\b{TEXT_TARGET}"), 4.0),
        (
            _cue(
                r"\b(summari[sz]e|summary|tl;?dr|generate a title|give a title|headline for|write a title|"
                r"in a (few|one|single) sentences?|key points|condense)\b"
            ),
            3.0,
        ),
        (
            _cue(
                r"^\W*(please )?(summari[sz]e|write a summary|give (me )?a summary|generate a (tl;?dr|summary|title))|"
                r"\b(write|generate) (a |an )?(tl;?dr|summary|title|headline) (of|for) (the|this) (above|following|"
                r"article|dialogue|text|conversation|story|passage)"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(rewrite|rephrase|paraphrase|reword|polish|edit (this|the following)|proofread|make it "
                r"(more|less|sound)|translate|in your own words|more formal|more concise)\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(brainstorm|give me (some )?ideas|list of ideas|suggest (some|a few|names)|ideas for|"
                r"come up with|imagine|pretend|act as|role-?play|you are a|in the style of)\b"
            ),
            2.5,
        ),
        (_cue(r"\b(creative|fictional|narrative|persuasive|catchy|funny|humorous|poetic|rhyme)\b"), 1.5),
        (_cue(r"^\W*(please )?(act as|pretend to be|role-?play as)\b"), 3.0),  # a role to play, whatever its topic
    ],
    Category.CLASSIFICATION: [
        (
            _cue(
                r"\b(classify|classification|categori[sz]e|label|tag|which category|what category|what type of|"
                r"is this (review|tweet|message|email|text|sentence|comment)|sentiment|positive or negative|"
                r"spam or|topic of|is (it|this) (a |an )?(positive|negative|neutral))\b"
            ),
            4.0,
        ),
        (
            _cue(
                r"\b(extract|pull out|identify (all|the|each)|list (all|the|each) (the )?(names|dates|entities|"
                r"people|places|companies|numbers|items)|from the (passage|text|paragraph|article|reference text)|"
                r"based on (the|this) (passage|text|paragraph|reference)|given (the|this) (passage|text|reference))\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"^\s*(categories|options|labels|choices)\s*:|\banswer (with|only) (yes|no|true|false|one word|"
                r"the (letter|label|category))\b|\b(yes or no|true or false)\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"\b(paraphrase|same meaning|equivalent|entail(s|ment)?|does the (first|second) sentence|"
                r"are these (two )?(sentences|questions) (the same|paraphrases|duplicates))\b"
            ),
            2.5,
        ),
        (
            _cue(
                r"^\W*(extract|classify|categori[sz]e|identify|label|tag)\b|^\W*given (the|this|a|these) [^\n]{0,80}"
                r"\b(extract|identify|list|classify|categori[sz]e)\b"
            ),
            3.0,
        ),
        (
            _cue(
                r"\b(fix the (typos|grammar|spelling)|correct the (grammar|spelling)|in json|as a table|"
                r"comma[- ]separated|bullet(ed)? list of)\b"
            ),
            1.5,
        ),
        (_cue(r"\b(which (of these|of the following) (is|are) (a|an)|odd one out|is (a|an) \w+ or (a|an) \w+)\b"), 2.0),
        (_cue(r"\b(pick|choose|select) one\s*:"), 2.0),  # labels to choose from follow: the answer is one of them
        (
            # A request to put items into groups is classifying them, wherever in the task it is asked.
            _cue(
                r"(^|[.!?:;]\s*|\b(first|then|please|now),?\s+)(group|sort|separate|organi[sz]e)\s+(the|these|each|them|"
                r"all)\b[^.?!\n]{0,40}?\binto\b"
            ),
            3.5,
        ),
        (
            _cue(
                r"^\W*(review( text)?|title|tweet|sentence|premise|question \d|text)\s*:|\brating of this review|"
                r"\bstar rating|\bpick one\b|\bchoose (one|from)\b|\bis this a piece of news (regarding|about)|"
                r"\b(duplicates|not duplicates)\b"
            ),
            3.0,
        ),
        (
            _cue(
                r"^\W*(sort|group|put|divide|separate|split|organi[sz]e) (these|the following|them)\b|"
                r"\btell me (whether|which|if) (these|each|the following)|\bidentify which\b|"
                r"\bclassify (each|these|the)|"
                r"\b(alive or extinct|animal or plant|living or non-?living|fruit or (a )?vegetable|mammal or)\b|"
                r"\bwhich (ones?|of them) (are|is)\b"
            ),
            3.5,
        ),
    ],
    Category.EMBEDDING: [
        (
            _cue(
                r"\b(embed(ding)?s?|vectori[sz]e|vector (index|database|store|search)|semantic (search|"
                r"similarity|index)|cosine similarity|nearest neighbou?rs?)\b"
            ),
            7.0,
        ),
    ],
}
