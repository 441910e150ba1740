"""ListOps (Nangia & Bowman 2018): the official files, the reference preprocessing, and a seeded
generator of the training split.

Files: ``test_d20s.tsv`` (the official test split) and ``valid_d20s_reference.tsv`` (the 1,000
validation lines the ReinMax and GST experiments ship) are looked for in ``listops/`` under the
data root (``root=``, else ``$REINMAX_DATA``, else the user cache; see
:func:`reinmax.data.data_root`), then in the user cache; if absent and ``download=True`` they are
downloaded into the user cache, checked against their md5 and moved into place atomically (the
MNIST loader's :func:`reinmax.data.mnist.download_file`).

The training split is not distributed here: :func:`generate` draws it with the published recipe
(operators MIN, MAX, MED = int(median), SM = sum mod 10; a node is an operator with probability
0.25, else a digit; 2-5 arguments; depth at most 20; unique lines; none equal to a test or
validation line). :func:`training_split` caches it in the user cache, or in a run's output folder,
under a name keyed by the generator's version and its settings; never in the data root.

Preprocessing (the reference's): parentheses dropped, spaces collapsed, ``[OP`` split into ``[``
and ``OP``; lines with 100 or more whitespace tokens dropped. The reference model then reads the
text **character by character** (spaces included); ``unit="token"`` reads whitespace tokens.
"""
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from . import ENV_VAR, data_root, default_cache_dir
from .mnist import ChecksumError, download_file

FILES: Dict[str, dict] = {
    "test": dict(name="test_d20s.tsv", md5="a533eeca66c3b8a9ca7ddc47d4e5254b", urls=[
        "https://raw.githubusercontent.com/nyu-mll/spinn/listops-release/python/spinn/data/listops/"]),
    "valid": dict(name="valid_d20s_reference.tsv", md5="295039f9ef101f27a2969249854f224f", urls=[
        # The file is valid.tsv in the ReinMax repository; downloaded under our name.
        "https://raw.githubusercontent.com/LiyuanLucasLiu/ReinMax/main/listops/data/listops/valid.tsv",
        "https://raw.githubusercontent.com/LiyuanLucasLiu/ReinMax/master/listops/data/listops/valid.tsv"]),
}
"""The two files read from outside, with their md5 (as shipped by their publishers)."""

UNITS = ("char", "token")
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
MAX_LENGTH = 100
"""The reference keeps lines with fewer than this many tokens (after preprocessing)."""

PAD, UNK = "<pad>", "<unk>"
CHARACTERS = tuple(" 0123456789ADEIMNSX[]")
TOKENS = tuple("0123456789") + ("[", "MIN", "MAX", "MED", "SM", "]")
NUM_CLASSES = 10
"""Labels are the digits 0-9 (the reference's label field adds an unused ``<unk>`` output)."""

GENERATOR_VERSION = 1
"""Bumped whenever :func:`generate` would draw different lines for the same seed (cache key)."""


def _fail(name, value, allowed):
    raise ValueError(f"listops: {name} must be {allowed}; got {name}={value!r}")


# ------------------------------------------------------------------------ files
def listops_file(split: str, *, root=None, download: bool = True, base_url: Optional[str] = None,
                 verify: bool = True, timeout: float = 60) -> Path:
    """The path of the official ``"test"`` or the reference ``"valid"`` file (see module docs)."""
    if split not in FILES:
        _fail("split", split, f"one of {sorted(FILES)} (the training split is generated: "
              "training_split())")
    spec = FILES[split]
    check = {"check": "md5", "checksums": {spec["name"]: spec["md5"]}}
    cache = default_cache_dir() / "listops"
    folders = [data_root(root) / "listops", cache]
    for folder in folders:
        path = folder / spec["name"]
        if path.is_file():
            if verify:
                from .mnist import verify_file
                verify_file(path, check, spec["name"])
            return path
    where = ", ".join(map(str, folders))
    if not download:
        raise FileNotFoundError(f"{spec['name']} not found in {where}; pass download=True, or "
                                f"put it in 'listops/' under a data root (root= or ${ENV_VAR}).")
    urls = [base_url.rstrip("/") + "/" + spec["name"]] if base_url else [
        u + spec["name"] if u.endswith("/") else u for u in spec["urls"]]
    errors = []
    for url in urls:
        try:
            return download_file(url, cache / spec["name"], check, spec["name"], timeout)
        except (OSError, ChecksumError) as error:
            errors.append(f"{url}: {error}")
    raise FileNotFoundError(f"{spec['name']} not found in {where} and the download failed "
                            f"({'; '.join(errors)}).")


def read_tsv(path) -> List[Tuple[int, str]]:
    """``(label, raw expression)`` pairs of a ``label<TAB>expression`` file."""
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            label, sep, expression = line.partition("\t")
            if not sep or not label.isdigit():
                raise ValueError(f"{path}:{number} is not 'label<TAB>expression': {line[:60]!r}")
            pairs.append((int(label), expression))
    return pairs


# ------------------------------------------------------------------------ preprocessing
def preprocess(expression: str) -> str:
    """The reference's text: parentheses dropped, spaces collapsed, ``[OP`` -> ``[ OP``."""
    return " ".join(expression.replace("(", " ").replace(")", " ").split()).replace("[", "[ ")


def units_of(text: str, unit: str) -> List[str]:
    """A preprocessed line as the model reads it: characters (as the reference) or tokens."""
    if unit == "char":
        return list(text)
    if unit == "token":
        return text.split()
    _fail("unit", unit, f"one of {list(UNITS)}")


def vocabulary(unit: str) -> Dict[str, int]:
    """Symbol -> index; padding is 0, unknown 1."""
    symbols = {"char": CHARACTERS, "token": TOKENS}.get(unit)
    if symbols is None:
        _fail("unit", unit, f"one of {list(UNITS)}")
    return {s: i for i, s in enumerate((PAD, UNK) + symbols)}


@dataclass
class ListOpsSplit:
    """One split, preprocessed and encoded: ``texts`` (reference text), ``ids`` (lists of symbol
    indices in ``unit``), ``labels`` (int64 tensor), ``vocab``."""
    texts: List[str]
    ids: List[List[int]]
    labels: torch.Tensor
    vocab: Dict[str, int]
    unit: str

    def __len__(self):
        return len(self.texts)


def encode(pairs: Sequence[Tuple[int, str]], unit: str = "char", max_tokens: int = MAX_LENGTH
           ) -> ListOpsSplit:
    """Preprocess, drop lines with ``max_tokens`` or more whitespace tokens, encode in ``unit``."""
    vocab = vocabulary(unit)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
        _fail("max_tokens", max_tokens, "an integer >= 2 (lines with this many tokens or more "
              "are dropped; the reference: 100)")
    texts, ids, labels = [], [], []
    for label, expression in pairs:
        text = preprocess(expression)
        if len(text.split()) >= max_tokens:
            continue
        texts.append(text)
        ids.append([vocab.get(s, 1) for s in units_of(text, unit)])
        labels.append(label)
    return ListOpsSplit(texts, ids, torch.tensor(labels, dtype=torch.int64), vocab, unit)


def load_split(split: str, unit: str = "char", max_tokens: int = MAX_LENGTH, **file_options
               ) -> ListOpsSplit:
    """The official test or reference validation split, preprocessed and filtered."""
    return encode(read_tsv(listops_file(split, **file_options)), unit, max_tokens)


# ------------------------------------------------------------------------ the generator
def _draw_tree(rng: random.Random, depth: int, max_depth: int, max_args: int, value_p: float):
    # The recipe (spinn make_data.py): below max_depth a node is an operator with probability
    # value_p, else a digit; at max_depth a digit. The root has depth 1.
    if depth < max_depth and rng.random() <= value_p:
        arguments = [_draw_tree(rng, depth + 1, max_depth, max_args, value_p)
                     for _ in range(rng.randint(2, max_args))]
        return (rng.choice(OPERATORS), arguments)
    return rng.randint(0, 9)


def evaluate_tree(tree) -> int:
    """The value of a tree: MIN, MAX, MED = int(median), SM = sum mod 10."""
    if isinstance(tree, int):
        return tree
    op, arguments = tree
    values = sorted(evaluate_tree(a) for a in arguments)
    if op == "[MIN":
        return values[0]
    if op == "[MAX":
        return values[-1]
    if op == "[SM":
        return sum(values) % 10
    middle = len(values) // 2      # int(np.median): the mean of the two middle values, floored
    return values[middle] if len(values) % 2 else int((values[middle - 1] + values[middle]) / 2)


def tree_string(tree) -> str:
    """The recipe's printing: every operator node as a left-branching binary tree,
    ``( ( ( [OP a ) b ) ] )``."""
    if isinstance(tree, int):
        return str(tree)
    op, arguments = tree
    text = op
    for part in [tree_string(a) for a in arguments] + ["]"]:
        text = f"( {text} {part} )"
    return text


def generate(n: int, seed: int, *, exclude: Sequence[str] = (), max_tokens: Optional[int] = None,
             max_depth: int = 20, max_args: int = 5, value_p: float = 0.25
             ) -> List[Tuple[int, str]]:
    """``n`` distinct ``(label, expression)`` lines drawn with the published recipe, none in
    ``exclude`` (raw expressions, e.g. the test and validation lines), in the order drawn.
    ``max_tokens``: keep only lines with fewer tokens after preprocessing (None: all; the
    reference filter at 100 is applied when the split is encoded)."""
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("max_depth", max_depth, 1),
                             ("max_args", max_args, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _fail(name, value, f"an integer >= {low}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 2):
        _fail("max_tokens", max_tokens, "None or an integer >= 2")
    if isinstance(value_p, bool) or not isinstance(value_p, (int, float)) or not 0 < value_p < 1:
        _fail("value_p", value_p, "a number in (0, 1)")
    rng = random.Random(seed)
    seen, lines = set(exclude), []
    attempts, limit = 0, 200 * n + 10000
    while len(lines) < n:
        attempts += 1
        if attempts > limit:
            raise ValueError(f"listops: could draw only {len(lines)} of n={n} distinct lines in "
                             f"{limit} attempts with max_tokens={max_tokens}; ask for fewer")
        tree = _draw_tree(rng, 1, max_depth, max_args, value_p)
        expression = tree_string(tree)
        if expression in seen:
            continue
        if max_tokens is not None and len(preprocess(expression).split()) >= max_tokens:
            continue
        seen.add(expression)
        lines.append((evaluate_tree(tree), expression))
    return lines


def _write_atomically(path: Path, lines: Sequence[Tuple[int, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(f"{label}\t{expression}\n" for label, expression in lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def training_split(n: int, seed: int, *, max_tokens: Optional[int] = None, cache_dir=None,
                   root=None, download: bool = True) -> Tuple[List[Tuple[int, str]], Path]:
    """The generated training lines and the file that caches them: ``cache_dir`` (e.g. a run's
    output folder) or the user cache's ``listops/``, named after the generator version and the
    settings. Lines equal to a test or reference validation line are never drawn."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "listops"
    suffix = "" if max_tokens is None else f"-lt{max_tokens}"
    path = folder / f"train-generated-v{GENERATOR_VERSION}-seed{seed}-n{n}{suffix}.tsv"
    if path.is_file():
        lines = read_tsv(path)
        if len(lines) == n:
            return lines, path
    exclude = {e for split in FILES for _, e in
               read_tsv(listops_file(split, root=root, download=download))}
    lines = generate(n, seed, exclude=exclude, max_tokens=max_tokens)
    _write_atomically(path, lines)
    return lines, path


# ------------------------------------------------------------------------ statistics
def depth(expression: str) -> int:
    """Operator nesting depth of a raw or preprocessed expression (a bare digit: 0)."""
    level = deepest = 0
    for char in expression:
        if char == "[":
            level += 1
            deepest = max(deepest, level)
        elif char == "]":
            level -= 1
    return deepest


def statistics(pairs: Sequence[Tuple[int, str]], max_tokens: int = MAX_LENGTH) -> Dict[str, object]:
    """Depth, length, label and operator distributions of the lines kept by the filter."""
    from collections import Counter
    texts = [(label, preprocess(e)) for label, e in pairs]
    kept = [(label, t) for label, t in texts if len(t.split()) < max_tokens]
    tokens = [len(t.split()) for _, t in kept]
    chars = [len(t) for _, t in kept]
    operators = Counter(tok for _, t in kept for tok in t.split() if tok in ("MIN", "MAX", "MED", "SM"))
    total_ops = sum(operators.values()) or 1
    return {
        "lines": len(pairs), "kept": len(kept),
        "mean_tokens": sum(tokens) / max(len(tokens), 1),
        "median_tokens": sorted(tokens)[len(tokens) // 2] if tokens else 0,
        "mean_chars": sum(chars) / max(len(chars), 1),
        "depth": dict(sorted(Counter(depth(t) for _, t in kept).items())),
        "labels": dict(sorted(Counter(label for label, _ in kept).items())),
        "operators": {op: operators[op] / total_ops for op in ("MIN", "MAX", "MED", "SM")},
    }


def evaluate_text(text: str) -> int:
    """The value of a raw or preprocessed expression (checks the generator's semantics against
    the official labels)."""
    stack: List[list] = [[]]
    for token in preprocess(text).split():
        if token == "[":
            stack.append([])
        elif token in ("MIN", "MAX", "MED", "SM"):
            stack[-1].append("[" + token)
        elif token == "]":
            op, *values = stack.pop()
            stack[-1].append(evaluate_tree((op, [int(v) for v in values])))
        else:
            stack[-1].append(int(token))
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError(f"listops: not a well-formed expression: {text[:60]!r}")
    return stack[0][0]


def operator_spans(text: str) -> List[Tuple[int, int]]:
    """Token spans ``(start, end)`` (end exclusive) of every ``[ OP ... ]`` of a preprocessed
    line, in token positions."""
    tokens, opens, spans = text.split(), [], []
    for position, token in enumerate(tokens):
        if token == "[":
            opens.append(position)
        elif token == "]":
            spans.append((opens.pop(), position + 1))
    return spans
