"""The book's structure rules, checked on the committed files (quick; no notebook is executed).

* every ``notebooks/*.ipynb`` has exactly one cell tagged ``parameters`` that sets ``smoke``,
  carries no stored outputs, and validates its parameters in the cell right after the
  ``parameters`` cell (where papermill's injected values have arrived);
* every notebook and every page named in ``_toc.yml`` exists, and every notebook is in it;
* every public (committed) module of the package appears on the API page;
* every cross-document glue role on a page reads ``path::key:format`` (the format may be empty):
  without the final colon MyST-NB parses the key as part of the path and the strict build fails.
"""
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The cell after `parameters` must check values: raise an error itself or call a checker.
VALIDATES = re.compile(r"\braise\b|\b\w*(valid|check|require)\w*\s*\(", re.I)
SETS_SMOKE = re.compile(r"^\s*smoke\s*(:[^=]*)?=", re.M)


def toc_files():
    """Every `file:` entry of _toc.yml (root, chapters, sections), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return [str(Path(entry).with_suffix("")) if Path(entry).suffix in (".md", ".ipynb") else entry
            for entry in found]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_parameters_and_validation(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    tagged = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'; exactly one is needed"
    index = tagged[0]
    cell = notebook.cells[index]
    assert cell.cell_type == "code", f"{path.name}: the 'parameters' cell must be a code cell"
    assert SETS_SMOKE.search(cell.source), f"{path.name}: the 'parameters' cell must set `smoke`"
    assert index + 1 < len(notebook.cells), f"{path.name}: no cell after the 'parameters' cell"
    following = notebook.cells[index + 1]
    assert following.cell_type == "code" and VALIDATES.search(following.source), (
        f"{path.name}: the cell after 'parameters' must validate the values papermill injects "
        "(raise a clear error, or call a validation function)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))]
    assert not dirty, (f"{path.name}: cells {dirty} carry outputs or execution counts; commit "
                       "notebooks without outputs (e.g. `jupyter nbconvert --clear-output --inplace`)")


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.stem}" not in listed]
    assert not missing, f"notebooks missing from _toc.yml: {missing}"


def test_every_toc_entry_exists():
    absent = [entry for entry in toc_files()
              if not any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb"))]
    assert not absent, f"_toc.yml names files that do not exist: {absent}"


def public_modules():
    """Top-level public modules of the package: committed ones in a git checkout (work in
    progress is not yet part of the book), every file otherwise."""
    package = ROOT / "reinmax"
    try:
        listed = subprocess.run(["git", "ls-files", "reinmax"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split()
        paths = [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):
        paths = [path for path in package.rglob("*.py")]
    modules = set()
    for path in paths:
        parts = path.relative_to(package).parts
        name = parts[0][:-3] if len(parts) == 1 and parts[0].endswith(".py") else parts[0]
        if len(parts) > 1 and not (package / parts[0] / "__init__.py").is_file():
            continue
        if not name.startswith("_") and (len(parts) > 1 or parts[0].endswith(".py")):
            modules.add(name)
    return sorted(modules)


def test_every_public_module_is_on_the_api_page():
    api = (ROOT / "book" / "api.md").read_text()
    modules = public_modules()
    missing = [name for name in modules if f"reinmax.{name}" not in api]
    assert not missing, (f"modules not on book/api.md: {missing}; add an automodule section "
                         "(or name them where the page documents them through `reinmax`)")


# {glue:text}`../notebooks/NN.ipynb::key` (no final colon) is read as path "...ipynb:" and key
# "key`"... by MyST-NB: the strict build then fails with "No key ... found in glue data".
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")


def glue_roles_without_format(text):
    return [role for role in GLUE_ROLE.findall(text) if "::" in role and ":" not in role.split("::", 1)[1]]


def test_cross_document_glue_roles_name_a_format():
    bad = {}
    for page in sorted((ROOT / "book").rglob("*.md")):
        found = glue_roles_without_format(page.read_text())
        if found:
            bad[str(page.relative_to(ROOT))] = found[:3]
    assert not bad, f"glue roles without the final ':format' (write 'path::key:'): {bad}"
    # The check itself: it must catch the form that broke the build, and pass the right one.
    assert glue_roles_without_format("{glue:text}`../notebooks/a.ipynb::key`") == ["../notebooks/a.ipynb::key"]
    assert glue_roles_without_format("{glue:text}`../notebooks/a.ipynb::key:.2f` {glue:text}`b::k:`") == []
