"""Reading a ListOps record: induced trees as brackets, and the tree-agreement tables. What the
paper's printed Table 1 shows under the book's policy is :func:`reinmax.reporting.claims.paper_power`;
the verdicts on our seeds come from :func:`reinmax.reporting.claims.evaluate`."""
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from reinmax.data import listops as data
from reinmax.models.treelstm import branching_spans, merge_spans


def bracketed(tokens: Sequence[str], spans: Sequence[Tuple[int, int]]) -> str:
    """A binary tree over ``tokens`` given its constituents (each span of two or more leaves),
    written with brackets: ``((a b) c)``."""
    opens, closes = [0] * len(tokens), [0] * len(tokens)
    for start, end in spans:
        if end - start >= 2:
            opens[start] += 1
            closes[end - 1] += 1
    return " ".join("(" * opens[i] + token + ")" * closes[i] for i, token in enumerate(tokens))


def gold_spans(text: str) -> List[Tuple[int, int]]:
    """The expression's own binary tree in token positions, as the data's parentheses give it:
    inside each ``[ OP a b ... ]`` the leaves are joined left to right, ``(((([ OP) a) b) ... ])``
    (the preprocessing splits ``[OP`` into two leaves, here joined first)."""
    tokens, spans = text.split(), set()

    def parse(i: int) -> int:          # returns the position after the node starting at i
        if tokens[i] != "[":
            return i + 1
        start, j = i, i + 2
        spans.add((start, j))
        while tokens[j] != "]":
            j = parse(j)
            spans.add((start, j))
        spans.add((start, j + 1))
        return j + 1

    if parse(0) != len(tokens):
        raise ValueError(f"gold_spans: not one well-formed expression: {text[:60]!r}")
    return sorted(spans, key=lambda s: (s[1] - s[0], s[0]))


def agreement_table(record: Mapping[str, Any]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{method: {depth: {"n", "spans", "left", "right"}}}`` summed over seeds: expressions,
    those whose every operator span is a constituent of the induced tree, and exact left- and
    right-branching trees. ``right`` is None where a run's record predates that count."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for run in record["runs"]:
        if not run.get("trees"):
            continue
        by_depth = out.setdefault(run["method"], {})
        for depth, entry in run["trees"]["by_depth"].items():
            cell = by_depth.setdefault(depth, {"n": 0, "spans": 0, "left": 0, "right": 0})
            for key in cell:
                if cell[key] is None or entry.get(key) is None:
                    cell[key] = None
                else:
                    cell[key] += entry[key]
    return out


def example_branching(record: Mapping[str, Any]) -> Dict[str, Dict[str, int]]:
    """``{method: {"n", "left", "right", "spans"}}`` over the expressions whose merges each run
    stored (its first validation expressions, summed over seeds): how many induced trees are
    exactly left-branching, exactly right-branching, and have every operator span as a
    constituent. The measure for records whose per-depth counts lack ``right``."""
    out: Dict[str, Dict[str, int]] = {}
    for run in record["runs"]:
        for example in (run.get("trees") or {}).get("examples", []):
            n = len(example["text"].split())
            spans = set(merge_spans(example["merges"], n))
            cell = out.setdefault(run["method"], {"n": 0, "left": 0, "right": 0, "spans": 0})
            cell["n"] += 1
            cell["left"] += spans == branching_spans(n, "left")
            cell["right"] += spans == branching_spans(n, "right")
            cell["spans"] += all(s in spans for s in data.operator_spans(example["text"]))
    return out


def example_constituents(record: Mapping[str, Any]) -> Dict[str, Dict[str, int]]:
    """``{method: {"n", "constituents", "left", "right"}}`` over the stored expressions of each
    run (as :func:`example_branching`): of the induced trees' inner constituents (spans of two or
    more leaves other than the whole expression), how many the left-branching tree also has (they
    start at the first leaf) and how many the right-branching one has (they end at the last). A
    graded measure beside the exact-shape counts: a right-branching parser scores 1 on ``right``
    even where one early merge keeps its tree from being exactly right-branching."""
    out: Dict[str, Dict[str, int]] = {}
    for run in record["runs"]:
        for example in (run.get("trees") or {}).get("examples", []):
            n = len(example["text"].split())
            inner = [(i, j) for i, j in merge_spans(example["merges"], n) if j - i >= 2 and (i, j) != (0, n)]
            cell = out.setdefault(run["method"], {"n": 0, "constituents": 0, "left": 0, "right": 0})
            cell["n"] += 1
            cell["constituents"] += len(inner)
            cell["left"] += sum(i == 0 for i, _ in inner)
            cell["right"] += sum(j == n for _, j in inner)
    return out


def draw_tree(ax, tokens: Sequence[str], spans: Sequence[Tuple[int, int]], title: str = "") -> None:
    """Draw the binary tree whose constituents are ``spans`` over ``tokens`` on a matplotlib
    axis: leaves along the bottom, each node above the middle of its span at a height of its
    width (every subtree is then a triangle on its own leaves, and no two lines cross)."""
    nodes = {(i, i + 1): (float(i), 0.0) for i in range(len(tokens))}
    for start, end in sorted(set(spans), key=lambda s: s[1] - s[0]):
        if end - start < 2:
            continue
        split = next((k for k in range(start + 1, end) if (start, k) in nodes and (k, end) in nodes), None)
        if split is None:
            continue                      # not a binary tree over these spans: skip the node
        (xl, yl), (xr, yr) = nodes[(start, split)], nodes[(split, end)]
        x, y = (start + end - 1) / 2, float(end - start - 1)
        ax.plot([xl, x, xr], [yl, y, yr], color="0.35", lw=1)
        nodes[(start, end)] = (x, y)
    for i, token in enumerate(tokens):
        ax.text(i, -0.3, token, ha="center", va="top", fontsize=8, family="monospace")
    ax.set_xlim(-1, len(tokens))
    ax.set_ylim(-1.5, max(y for _, y in nodes.values()) + 0.5)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
