"""Checks on the built HTML that need no browser: progress bars are not clutter.

The notebooks the book shows are executed with ``REINMAX_PROGRESS=final`` (``tools/book.py``),
under which ``reinmax.experiments.progress_bar`` prints one line per loop, its final state. A
page that shows a bar in any other state (a redraw: ``3/10``) was executed with live bars, and
would show one line per redraw (hundreds in the polynomial-programming chapter before).

Which build: ``$REINMAX_BOOK_HTML`` as for ``tests/test_book_browser.py`` (``make test`` sets
``_build/html-smoke``), default ``_build/html``; skipped when that directory does not exist.
"""
import html
import os
import re
from pathlib import Path

import pytest

from reinmax.experiments import progress_bar

ROOT = Path(__file__).resolve().parent.parent
HTML_DIR = Path(os.environ.get("REINMAX_BOOK_HTML") or ROOT / "_build" / "html")
if not HTML_DIR.is_absolute():
    HTML_DIR = ROOT / HTML_DIR

# tqdm's text bar: "desc:  40%|####      | 4/10 [00:01<00:02, 3.1it/s]" (any bar characters),
# or without a known total "desc: 7it [00:01, 5.2it/s]".
BAR = re.compile(r"(?:\d+%\|[^|\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*\[)|(?:\b\d+it \[\d)")
PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)


def progress_lines(page: str) -> list:
    """(line, is_final) for every progress-bar line in a page's preformatted blocks; a carriage
    return (a redraw) separates lines as a terminal's newline would."""
    found = []
    for block in PRE.findall(page):
        text = html.unescape(re.sub(r"<[^>]+>", "", block))
        for line in re.split(r"[\r\n]+", text):
            match = BAR.search(line)
            if match:
                final = match.group("n") is None or match.group("n") == match.group("total")
                found.append((line.strip(), final))
    return found


def test_progress_line_counter_tells_redraws_from_final_lines(monkeypatch, capsys):
    """The counter flags a live bar's redraws and accepts what progress_bar prints under
    REINMAX_PROGRESS=final: exactly one line, the final state, per loop."""
    live = ("<pre>run:   0%|          | 0/3 [00:00&lt;?, ?it/s]\rrun:  33%|###3      | 1/3 "
            "[00:00&lt;00:00, 9.1it/s]\rrun: 100%|##########| 3/3 [00:00&lt;00:00, 9.0it/s]\n</pre>")
    assert [final for _, final in progress_lines(live)] == [False, False, True]
    monkeypatch.setenv("REINMAX_PROGRESS", "final")
    for _ in progress_bar(range(3), desc="first"):
        pass
    bar = progress_bar(total=5, desc="second")
    for _ in range(5):
        bar.update(1)
    bar.close()
    for _ in progress_bar(range(4), desc="hidden", leave=False):
        pass
    printed = capsys.readouterr()
    assert printed.out == ""
    lines = progress_lines(f"<pre>{html.escape(printed.err)}</pre>")
    assert [(line.split(":")[0], final) for line, final in lines] == [("first", True), ("second", True)]
    monkeypatch.setenv("REINMAX_PROGRESS", "loud")
    with pytest.raises(ValueError, match="REINMAX_PROGRESS='loud'"):
        progress_bar(range(2))


def test_built_pages_show_only_final_progress_lines():
    if not HTML_DIR.is_dir():
        pytest.skip(f"no built book at {HTML_DIR}: run `python tools/book.py build --scale smoke` "
                    f"and set REINMAX_BOOK_HTML=_build/html-smoke (or `make book`)")
    pages = sorted(HTML_DIR.rglob("*.html"))
    assert pages, f"{HTML_DIR} holds no HTML pages"
    counts, redraws = {}, {}
    for page in pages:
        lines = progress_lines(page.read_text(errors="replace"))
        name = str(page.relative_to(HTML_DIR))
        counts[name] = len(lines)
        bad = [line for line, final in lines if not final]
        if bad:
            redraws[name] = bad[:3] + ([f"... {len(bad) - 3} more"] if len(bad) > 3 else [])
    assert not redraws, f"progress-bar redraws in the built pages (one line per loop expected): {redraws}"
    # The notebooks that train (06 onwards) do show their loops' final lines.
    print({name: n for name, n in counts.items() if n})
