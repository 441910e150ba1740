"""Sphinx extension: serve MathJax 3 from the built book instead of a CDN.

The book must render its equations without network access. The PyPI wheel
``django-static-mathjax==3.2.2.1`` (pinned in requirements.txt) ships MathJax 3.2.2 as plain files
under ``mathjax/static/mathjax/es5/``. This extension

* refuses a ``mathjax_path`` that points at the network (``://`` in it), and
* after an HTML build copies the entry script named by ``mathjax_path`` (relative to
  ``_static/mathjax/``) plus the pieces MathJax loads lazily from beside it (TeX input and its
  extensions, the CHTML output with its woff fonts, the menu, the accessibility tools and the
  speech-rule engine they use) into ``<outdir>/_static/mathjax/``.

Sphinx renders a ``mathjax_path`` without ``://`` as a path under ``_static/``, so pages load
``_static/mathjax/tex-mml-chtml.js`` and MathJax finds its other components relative to that.
"""
import shutil
from pathlib import Path

from sphinx.errors import ConfigError

PREFIX = "mathjax/"
# Directories MathJax's loader fetches from at run time (relative to es5/); the SVG output and
# the other combined components are left out because mathjax_path names a CHTML entry script.
LAZY_PARTS = ["input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre", "adaptors"]


def mathjax_es5() -> Path:
    """The es5/ directory of the MathJax distribution inside the django-static-mathjax wheel."""
    try:
        import mathjax  # the import name of django-static-mathjax
    except ImportError as exc:
        raise ConfigError("offline MathJax needs django-static-mathjax==3.2.2.1 "
                          "(pip install -r requirements.txt)") from exc
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not es5.is_dir():
        raise ConfigError(f"no MathJax es5 directory at {es5}; reinstall django-static-mathjax")
    return es5


def check_config(app, config) -> None:
    path = config.mathjax_path
    if "://" in path or path.startswith("//"):
        raise ConfigError(f"mathjax_path={path!r} loads MathJax from the network; the book serves "
                          f"it locally: use a path under {PREFIX!r}, e.g. 'mathjax/tex-mml-chtml.js'")
    if not path.startswith(PREFIX):
        raise ConfigError(f"mathjax_path={path!r} must start with {PREFIX!r} (the directory this "
                          "extension fills)")
    entry = mathjax_es5() / path[len(PREFIX):]
    if not entry.is_file():
        choices = sorted(p.name for p in mathjax_es5().glob("*.js"))
        raise ConfigError(f"mathjax_path={path!r}: no such MathJax component; choose one of {choices}")


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    es5 = mathjax_es5()
    target = Path(app.outdir) / "_static" / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    entry = app.config.mathjax_path[len(PREFIX):]
    shutil.copy2(es5 / entry, target / entry)
    for part in LAZY_PARTS:
        source = es5 / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        elif source.is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def setup(app):
    app.connect("config-inited", check_config)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
