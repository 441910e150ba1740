"""Verdict words in the book's prose: where a chapter says "supported", "contradicted",
"not decided", "holds" or "fails" in its own words instead of gluing the verdict that
:mod:`reinmax.reporting.claims` computed from the records.

    python tools/verdict_words.py            # lists every hit outside the allow-list

What counts as prose: the text of ``book/**/*.md`` outside fenced blocks (code cells, code,
directives' bodies are still prose unless fenced with backticks), inline code, roles such as
``{glue:text}`...``` and math. A verdict word there is a verdict typed by hand.
:data:`NOT_YET_CONVERTED` lists the pages that still type their verdicts: none, since every
chapter glues its verdicts from the claims module (a word in another sense is reworded).
"""
import re
import sys
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

WORDS = ("supported", "contradicted", "not decided", "holds", "fails")
PATTERN = re.compile(r"\b(" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in WORDS) + r")\b",
                     re.IGNORECASE)

NOT_YET_CONVERTED: frozenset = frozenset()
"""Pages (relative to ``book/``) not yet wired to the claims module."""

_FENCE = re.compile(r"^(```|~~~)")
_CODE_DIRECTIVES = {"{code-cell}", "{code-block}", "{code}", "{literalinclude}", "{math}", "{glue:}"}
_INLINE = re.compile(r"\{[a-z:-]+\}`[^`]*`|``[^`]*``|`[^`]*`|\$\$[^$]*\$\$|\$[^$\n]*\$")


def prose_lines(text: str) -> List[Tuple[int, str]]:
    """``(line number, text)`` of the prose: code fences (plain, a language, or a code
    directive such as ``{code-cell}``) skipped, inline code, roles and math removed. Other
    directives (``{note}``, ``{admonition}``, figure captions) hold prose and are kept."""
    lines, fence, directives = [], None, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is not None:
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
            continue
        match = _FENCE.match(stripped)
        if match:
            marks = re.match(r"^[`~]+", stripped).group(0)
            info = stripped[len(marks):].strip()
            # The closing fence of a prose directive ({note}, {admonition}) is not the opening
            # of a code block: without this, everything after the first note was skipped.
            if not info and directives and directives[-1] == marks:
                directives.pop()
                continue
            if not info.startswith("{") or info.split("}")[0] + "}" in _CODE_DIRECTIVES:
                fence = marks
                continue
            directives.append(marks)
        lines.append((number, _INLINE.sub(" ", line)))
    return lines


def verdict_words(path: Path) -> List[Tuple[int, str]]:
    """``(line, word)`` for every verdict word in the prose of one page."""
    return [(number, match.group(0)) for number, line in prose_lines(path.read_text())
            for match in PATTERN.finditer(line)]


def check_book(book: Path = BOOK, allowed=NOT_YET_CONVERTED) -> List[str]:
    """``"page:line: word"`` for every verdict word in a page that is not allowed to have them."""
    problems = []
    for path in sorted(book.rglob("*.md")):
        name = path.relative_to(book).as_posix()
        if name in allowed:
            continue
        problems += [f"{name}:{line}: {word}" for line, word in verdict_words(path)]
    return problems


if __name__ == "__main__":
    found = check_book()
    print("\n".join(found) or "no verdict word typed in the prose of the converted pages")
    sys.exit(1 if found else 0)
