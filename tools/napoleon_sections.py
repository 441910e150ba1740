"""Sphinx extension: napoleon for docstring *sections*, not for module data and attributes.

``sphinx.ext.napoleon`` turns Google/NumPy sections (``Args:``, ``Returns:``) into fields, which
is what the API page wants. It also reads the first line of a data or attribute docstring as
``type: description``, so ``STREAMS = ...`` documented as "Independent random streams per seed:
parameter initialisation, ..." would show the type "Independent random streams per seed" (and,
under ``-n``, a broken reference to it). This extension loads napoleon, removes its docstring
hook and installs one that skips data and attributes; everything else napoleon does is unchanged.
"""
from sphinx.ext import napoleon

SKIPPED = ("data", "attribute")


def _sections_only(app, what, name, obj, options, lines):
    if what not in SKIPPED:
        napoleon._process_docstring(app, what, name, obj, options, lines)


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")
    for listener in list(app.events.listeners.get("autodoc-process-docstring", [])):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _sections_only)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
