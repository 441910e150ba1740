"""Experiments of the paper: each package has a validated config and ``run(config) -> record``,
no plotting; what they share (config checks, device, seeds, atomic records and checkpoints,
resume by fingerprint, the record shape) is ``reinmax.experiments.layer``."""


def progress_bar(*args, **kwargs):
    """A tqdm progress bar: live for people running a notebook or a long job, quiet in the book.

    ``REINMAX_PROGRESS`` chooses (``tools/book.py`` sets ``final`` for the notebooks it executes):

    * unset or ``live``: tqdm.auto's bar (a widget where ipywidgets exists, else a text bar),
      without tqdm's warning when a notebook has no ipywidgets;
    * ``final``: nothing while the loop runs, then one line, the bar's final state, when it closes
      (a bar with ``leave=False`` prints nothing). A notebook executed by papermill would otherwise
      keep every redraw of a text bar, and the book would show hundreds of lines of bars.
    """
    import os
    import sys
    import warnings

    mode = os.environ.get("REINMAX_PROGRESS", "live").strip().lower() or "live"
    if mode not in ("live", "final"):
        raise ValueError(f"REINMAX_PROGRESS={mode!r} is not allowed: 'live' (default) or 'final'")
    if mode == "live":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
        return tqdm(*args, **kwargs)

    from tqdm.std import tqdm as text_tqdm

    class Discard:
        """A file that drops what tqdm writes while the loop runs."""
        def write(self, text):
            return len(text)

        def flush(self):
            pass

    class FinalLine(text_tqdm):
        def display(self, msg=None, pos=None):
            self._last = self.__str__() if msg is None else msg   # remembered, not written
            return True

        def close(self):
            if self.disable:
                return
            leave = self.leave
            super().close()          # draws the final state once, through display()
            if leave and getattr(self, "_last", None):
                print(self._last.strip(), file=sys.stderr, flush=True)

    kwargs["file"] = Discard()
    return FinalLine(*args, **kwargs)
