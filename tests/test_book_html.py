"""Checks on the built HTML that need no browser, and the same checks on the sources where they can
be made without a build.

* Progress bars are not clutter (below).
* What a reader sees is the book, not debugging: every glued value is rendered and none reads
  "None"; no cell output is a raw ``dict`` or ``tuple`` repr; no line of a cell's output is wider
  than the page (:data:`MAX_OUTPUT_WIDTH` characters).
* Every figure has a caption (a ``<figure>`` with a ``<figcaption>``; in the notebooks, a cell
  that shows a figure carries ``mystnb.figure.caption`` in its metadata).
* No math uses a macro that MathJax does not define (it shows in red in a page): every macro in
  the book's math is a macro of MathJax's TeX packages (read from the MathJax bundle the build
  serves) or of ``_config.yml``; checked statically on the markdown and in the built pages.
* No prose promises as future work what the book has (:data:`STALE_PHRASES`).

The notebooks the book shows are executed with ``REINMAX_PROGRESS=final`` (``tools/book.py``),
under which ``reinmax.experiments.progress_bar`` prints one line per loop, its final state. A
page that shows a bar in any other state (a redraw: ``3/10``) was executed with live bars, and
would show one line per redraw (hundreds in the polynomial-programming chapter before).

Which build: ``$REINMAX_BOOK_HTML`` as for ``tests/test_book_browser.py`` (``make test`` sets
``_build/html-smoke``), default ``_build/html``; skipped when that directory does not exist.
"""
import html
import json
import os
import re
from html.parser import HTMLParser
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



# ----------------------------------------------------------------------------- the page, not debugging
MAX_OUTPUT_WIDTH = 100
"""The widest line of a cell's output that fits the page without scrolling sideways."""
STALE_PHRASES = ("not written yet", "not yet in the book", "when the package has them",
                 "when the book adds", "the chapter will show", "what they will run",
                 "chapters not written")
"""Promises of future work about things the book now has; none may appear in its prose."""
# MathJax's TeX macros that are not letters (base package); \( \) \[ \] are the delimiters.
SYMBOL_MACROS = set(" ,:>;!{}|\\_#$%&/")
NOT_CONTENT_PAGES = {"genindex.html", "search.html", "py-modindex.html", "index.html"}
CAPTION_KEY = ("mystnb", "figure", "caption")


def content_pages():
    if not HTML_DIR.is_dir():
        pytest.skip(f"no built book at {HTML_DIR}: run `python tools/book.py build --scale smoke` "
                    f"and set REINMAX_BOOK_HTML=_build/html-smoke (or `make book`)")
    pages = [p for p in sorted(HTML_DIR.rglob("*.html"))
             if p.name not in NOT_CONTENT_PAGES and "_static" not in p.parts and "_sources" not in p.parts]
    assert pages, f"{HTML_DIR} holds no HTML pages"
    return pages


class PageParser(HTMLParser):
    """Collects from one page: the text of each cell output's <pre> blocks, glued values, math
    elements, images with whether they sit in a captioned <figure>, and the visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []                     # (tag, classes) of the open elements
        self.outputs, self.pasted, self.math, self.text = [], [], [], []
        self.figures = []                   # [has a figcaption, [image sources]]
        self.images = []                    # (src, inside a figure)
        self.capture = None                 # (kind, [text parts]) of the element being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            if tag == "img":
                inside = any(t == "figure" for t, _ in self.stack)
                self.images.append((attrs.get("src", ""), inside))
                if inside:
                    self.figures[-1][1].append(attrs.get("src", ""))
            return
        self.stack.append((tag, classes))
        if tag == "figure":
            self.figures.append([False, []])
        if tag == "figcaption" and self.figures:
            self.figures[-1][0] = True
        if self.capture is None:
            in_output = any("cell_output" in c or "output" in c for _, c in self.stack[:-1])
            if tag == "pre" and in_output:
                self.capture = ("output", [], len(self.stack))
            elif tag == "span" and classes & {"pasted-text", "pasted-inline"}:
                self.capture = ("pasted", [], len(self.stack))
            elif tag in ("span", "div") and "math" in classes:
                self.capture = ("math", [], len(self.stack))

    def handle_endtag(self, tag):
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if self.capture is not None and len(self.stack) < self.capture[2]:
                kind, parts, _ = self.capture
                {"output": self.outputs, "pasted": self.pasted, "math": self.math}[kind].append("".join(parts))
                self.capture = None
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.capture is not None:
            self.capture[1].append(data)
        if not any(t in ("script", "style") for t, _ in self.stack):
            self.text.append(data)


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text(errors="replace"))
    return parser


def raw_repr_lines(text: str) -> list:
    """Lines of an output that are a Python dict or tuple repr: "{'a': 1, ...}" or "('x', 2)"."""
    return [line for line in text.splitlines()
            if re.match(r"""^\s*(\{\s*['"][^'"]*['"]\s*:|\(\s*['"][^'"]*['"]\s*,)""", line)]


def mathjax_macros(bundle: Path) -> set:
    """The TeX macro names MathJax's bundle defines (its command, character and delimiter maps
    and the macros that autoload an extension), plus the non-letter ones and _config.yml's."""
    js = bundle.read_text(errors="replace")
    known = set(re.findall(r"[{,]([A-Za-z]+):", js)) | set(re.findall(r'"\\\\([A-Za-z]+)"', js))
    import yaml
    config = yaml.safe_load((ROOT / "_config.yml").read_text()) or {}
    mathjax3 = (((config.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {})
    known |= set(((mathjax3.get("tex") or {}).get("macros") or {}))
    return known | SYMBOL_MACROS


def unknown_macros(math: str, known: set) -> set:
    math = re.sub(r"\\[()\[\]]", " ", math)      # the delimiters \( \) \[ \] around the math
    return {name for name in re.findall(r"\\([A-Za-z]+|[^A-Za-z\s])", math) if name not in known}


def source_texts():
    """(where, markdown text) of every chapter, appendix page and notebook markdown cell, and every
    figure caption kept in a notebook cell's metadata."""
    for path in sorted((ROOT / "book").rglob("*.md")):
        yield str(path.relative_to(ROOT)), path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            name = f"{path.relative_to(ROOT)} cell {k}"
            if cell["cell_type"] == "markdown":
                yield name, "".join(cell["source"])
            caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
            if caption:
                yield name + " caption", caption


def math_in_markdown(text: str) -> list:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    display = re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
    inline = re.findall(r"\$([^$\n]+?)\$", re.sub(r"\$\$.+?\$\$", "", text, flags=re.S))
    return display + inline


def bundle_in_venv() -> Path:
    mathjax = pytest.importorskip("mathjax")
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-mml-chtml.js"


def test_unknown_macro_detection_catches_the_red_star():
    r"""The check flags chapter 10's old `k^\*` (MathJax has no \* macro) and passes its fix."""
    known = mathjax_macros(bundle_in_venv())
    assert unknown_macros(r"w_{k^\*}\,\mathrm{op}_{k^\*}(x)", known) == {"*"}
    assert unknown_macros(r"w_{k^{\ast}}\,\mathrm{op}_{k^{\ast}}(x) + \lVert x \rVert_p^p", known) == set()
    assert unknown_macros(r"\mathbbb{R}", known) == {"mathbbb"}
    assert math_in_markdown("a $k^\\*$ b `$x$` $$\\frac{1}{2}$$") == ["\\frac{1}{2}", "k^\\*"]


def test_sources_use_only_defined_macros():
    known = mathjax_macros(bundle_in_venv())
    bad = {}
    for where, text in source_texts():
        for math in math_in_markdown(text):
            unknown = unknown_macros(math, known)
            if unknown:
                bad.setdefault(where, []).append((sorted(unknown), math[:60]))
    assert not bad, f"math with macros MathJax does not define (shown in red): {bad}"


def test_sources_promise_nothing_the_book_has():
    found = [(where, phrase) for where, text in source_texts() for phrase in STALE_PHRASES
             if phrase in " ".join(text.lower().split())]
    assert not found, f"prose promising future work the book has done: {found}"


def test_every_figure_cell_has_a_caption():
    """A notebook cell that shows a figure carries its caption in its metadata, and shows nothing
    else that would land inside the figure (a Markdown table)."""
    import ast
    missing, mixed = [], []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        drawers = {"show"}                  # plt.show, and the notebook's functions that call it
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse(source)
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and any(
                        isinstance(c, ast.Call) and getattr(c.func, "attr", getattr(c.func, "id", None)) in drawers
                        for c in ast.walk(node)):
                    drawers.add(node.name)
            inside_defs = {id(c) for d in ast.walk(tree) if isinstance(d, ast.FunctionDef) for c in ast.walk(d)}
            if not any(isinstance(c, ast.Call) and id(c) not in inside_defs
                       and getattr(c.func, "attr", getattr(c.func, "id", None)) in drawers for c in ast.walk(tree)):
                continue
            caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
            if not caption:
                missing.append(f"{path.name} cell {k}")
            elif "display(" in source:
                mixed.append(f"{path.name} cell {k}")
    assert not missing, f"figure cells without mystnb.figure.caption: {missing}"
    assert not mixed, f"figure cells that also display other output (it would become part of the figure): {mixed}"


def test_built_pages_show_the_book_not_debugging():
    """Glued values rendered (none empty or "None"), no raw dict/tuple output, no output line
    wider than the page, every image in a captioned figure, no math error, no stale promise."""
    known = None
    bundle = HTML_DIR / "_static" / "mathjax" / "tex-mml-chtml.js"
    problems = {}
    for page in content_pages():
        name = str(page.relative_to(HTML_DIR))
        parsed = parse(page)
        found = []
        found += [f"glued value {text!r}" for text in parsed.pasted
                  if not text.strip() or text.strip() in ("None", "nan", "'None'")]
        for text in parsed.outputs:
            found += [f"raw repr: {line[:80]!r}" for line in raw_repr_lines(text)]
            found += [f"output line of {len(line)} characters: {line[:60]!r}..." for line in text.splitlines()
                      if len(line.rstrip()) > MAX_OUTPUT_WIDTH]
        found += [f"image without a captioned figure: {src}" for src, inside in parsed.images
                  if not inside and "_images" in src]
        found += [f"figure without a caption: {sources}" for captioned, sources in parsed.figures
                  if sources and not captioned]
        if bundle.is_file():
            known = known or mathjax_macros(bundle)
            for math in parsed.math:
                unknown = unknown_macros(html.unescape(math), known)
                if unknown:
                    found.append(f"undefined macro(s) {sorted(unknown)} in {math[:60]!r}")
        text = " ".join(" ".join(parsed.text).lower().split())
        found += [f"stale phrase {phrase!r}" for phrase in STALE_PHRASES if phrase in text]
        if found:
            problems[name] = found[:6] + ([f"... {len(found) - 6} more"] if len(found) > 6 else [])
    assert not problems, "what a reader should not see:\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_page_checks_fail_on_a_page_with_every_fault(tmp_path):
    """The page parser finds each fault in a page made to have all of them."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<div class="cell_output docutils container"><div class="output stream"><pre>'
        "{'nb15_scale': 'study', 'x': 1}\n('baselines', 2, 'DisARM') seeds [0, 1]\n" + "x" * 120 +
        '</pre></div></div><p>ends at <span class="pasted-text">None</span>, not written yet</p>'
        '<img src="../_images/a.png"><figure><img src="../_images/b.png"></figure>'
        '<span class="math notranslate nohighlight">\\(k^\\*\\)</span>')
    parsed = parse(page)
    assert parsed.pasted == ["None"]
    assert len(raw_repr_lines(parsed.outputs[0])) == 2
    assert max(map(len, parsed.outputs[0].splitlines())) > MAX_OUTPUT_WIDTH
    assert parsed.images == [("../_images/a.png", False), ("../_images/b.png", True)]
    assert parsed.figures == [[False, ["../_images/b.png"]]]
    assert parsed.math == ["\\(k^\\*\\)"]
    assert "not written yet" in " ".join(parsed.text)
