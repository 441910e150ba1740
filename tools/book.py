"""Build pipeline of the book: stage, execute the notebooks with papermill, build the HTML.

    python tools/book.py execute --scale book|smoke [--force] [--timeout S] [--only NAME ...]
    python tools/book.py build   --scale book|smoke
    python tools/book.py all     --scale book|smoke [--force]

Layout (everything under _build/, which git ignores):

* ``_build/stage-<scale>/`` is the source tree Jupyter Book reads. It mirrors the repository
  (``_config.yml``, ``_toc.yml``, ``book/``, ``reinmax/`` for literalinclude, ``results/``,
  ``tools/`` for the local Sphinx extension) so that ``_toc.yml`` is the same file in both
  places; its ``notebooks/`` holds the copies papermill executed, with their figures beside them.
* ``_build/reports-<scale>/NN_name.ipynb`` and ``.log`` are papermill's output notebook and log
  for each run: on failure they are kept (and the stale executed copy is removed, so a build
  can never show old outputs); on success the notebook is copied into the stage.
* HTML: ``_build/html`` for the book scale (``make book``), ``_build/html-smoke`` for smoke
  (``make test``).

A notebook is re-executed when it, anything under ``reinmax/`` or ``results/``, the scale or
the parameters changed (a hash stored in the executed copy's metadata), or with ``--force``.
Markdown chapters with code cells are executed by the build itself (``_config.yml``:
``execute_notebooks: force``, and ``--all`` below makes Sphinx re-read every page).
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
SCALES = {
    # papermill parameters per scale; the notebooks' own defaults are the book scale.
    "book": {},
    "smoke": {"smoke": True},
}
# Per-notebook wall-clock limits (seconds); `make book` as a whole must stay under 30 minutes.
DEFAULT_TIMEOUT = {"book": 1200, "smoke": 300}
# Copied into the stage for every build; notebooks/ is handled separately (executed copies).
STAGED = ["_config.yml", "_toc.yml", "book", "reinmax", "results", "tools"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "_build")


def stage_dir(scale: str) -> Path:
    return BUILD / f"stage-{scale}"


def html_dir(scale: str) -> Path:
    return BUILD / ("html" if scale == "book" else f"html-{scale}")


def notebooks() -> list:
    found = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise SystemExit("error: no notebooks/NN_*.ipynb found; the book needs at least one")
    return found


def source_hash(notebook: Path, scale: str) -> str:
    """What an executed copy depends on: the notebook, the package, stored results, the scale."""
    digest = hashlib.sha256()
    digest.update(json.dumps([scale, SCALES[scale]], sort_keys=True).encode())
    digest.update(notebook.read_bytes())
    for folder in ("reinmax", "results"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def stored_hash(executed: Path) -> str:
    try:
        return json.loads(executed.read_text())["metadata"].get("reinmax_book", {}).get("source_hash", "")
    except (OSError, ValueError, KeyError):
        return ""


def stage(scale: str) -> Path:
    """Refresh the stage's copies of the sources; executed notebooks stay where they are."""
    target = stage_dir(scale)
    target.mkdir(parents=True, exist_ok=True)
    for name in STAGED:
        source, dest = ROOT / name, target / name
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        if source.is_dir():
            shutil.copytree(source, dest, ignore=IGNORE)
        elif source.is_file():
            shutil.copy2(source, dest)
    staged_notebooks = target / "notebooks"
    staged_notebooks.mkdir(exist_ok=True)
    # Support files beside the notebooks (not the notebooks themselves, not their outputs).
    for path in (ROOT / "notebooks").iterdir():
        if path.suffix != ".ipynb" and path.name not in ("figures", ".ipynb_checkpoints", "__pycache__"):
            copy = shutil.copytree if path.is_dir() else shutil.copy2
            dest = staged_notebooks / path.name
            if dest.is_dir():
                shutil.rmtree(dest)
            copy(path, dest)
    # Executed copies whose source notebook is gone would linger in the stage.
    sources = {path.name for path in notebooks()}
    for path in staged_notebooks.glob("*.ipynb"):
        if path.name not in sources:
            path.unlink()
    return target


def kill_group(process: subprocess.Popen) -> None:
    """papermill starts a kernel process; end the whole session we started, not just papermill."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def execute_one(notebook: Path, scale: str, timeout: float, force: bool) -> bool:
    staged_notebooks = stage_dir(scale) / "notebooks"
    executed = staged_notebooks / notebook.name
    digest = source_hash(notebook, scale)
    if not force and executed.exists() and stored_hash(executed) == digest:
        print(f"  {notebook.name}: up to date (unchanged notebook, package and results)")
        return True
    reports = BUILD / f"reports-{scale}"
    reports.mkdir(parents=True, exist_ok=True)
    report, log = reports / notebook.name, reports / (notebook.stem + ".log")
    if executed.exists():
        executed.unlink()          # never leave an old executed copy for the build to show
    command = [sys.executable, "-m", "papermill", str(notebook), str(report),
               "--cwd", str(staged_notebooks), "--kernel", "python3", "--no-progress-bar",
               "--log-output", "--execution-timeout", str(int(timeout))]
    for key, value in SCALES[scale].items():
        command += ["-p", key, str(value)]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)   # kernels must use the inline backend, or figures are not captured
    started = time.monotonic()
    with log.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   cwd=ROOT, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.wait()
            code = None
    seconds = time.monotonic() - started
    if code == 0:
        data = json.loads(report.read_text())
        data["metadata"]["reinmax_book"] = {"source_hash": digest, "scale": scale,
                                            "seconds": round(seconds, 1)}
        executed.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"  {notebook.name}: executed in {seconds:.0f} s")
        return True
    why = f"timed out after {timeout:.0f} s" if code is None else f"failed (exit status {code})"
    tail = log.read_text(errors="replace").splitlines()[-25:]
    print(f"  {notebook.name}: {why}; report kept: {report.relative_to(ROOT)}, "
          f"log: {log.relative_to(ROOT)}\n    " + "\n    ".join(tail), file=sys.stderr)
    return False


def execute(scale: str, force: bool, timeout: float, only=None) -> bool:
    stage(scale)
    selected = [nb for nb in notebooks() if not only or nb.stem in only or nb.name in only]
    if only and not selected:
        raise SystemExit(f"error: --only {only} matches no notebook; notebooks: "
                         f"{[nb.stem for nb in notebooks()]}")
    print(f"executing {len(selected)} notebook(s) at {scale} scale in {stage_dir(scale).relative_to(ROOT)}")
    # Keep going after a failure so one run reports every broken notebook.
    results = [execute_one(nb, scale, timeout, force) for nb in selected]
    return all(results)


def build(scale: str) -> bool:
    """Jupyter Book from the stage: -W -n --keep-going, --all so every page is read again."""
    source = stage(scale)
    missing = [nb.name for nb in notebooks() if not (source / "notebooks" / nb.name).exists()]
    if missing:
        print(f"error: no executed copy of {missing} in {source.relative_to(ROOT)}/notebooks; "
              f"run: python tools/book.py execute --scale {scale}", file=sys.stderr)
        return False
    output = BUILD / f"out-{scale}"
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(source), "--path-output", str(output),
               "--all", "-W", "-n", "--keep-going"]
    print("$", " ".join(str(part) for part in command), flush=True)
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)   # kernels must use the inline backend, or figures are not captured
    if subprocess.call(command, cwd=ROOT, env=env) != 0:
        print(f"error: the {scale}-scale book build failed (warnings count as errors)", file=sys.stderr)
        return False
    # jupyter-book always writes to <path-output>/_build/html; publish it under a short name.
    target = html_dir(scale)
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(output / "_build" / "html"), str(target))
    print(f"book ({scale} scale): {target.relative_to(ROOT)}/index.html")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["execute", "build", "all"])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--force", action="store_true", help="re-execute even unchanged notebooks")
    parser.add_argument("--timeout", type=float, default=None,
                        help="per-notebook limit in seconds (default: book 1200, smoke 300)")
    parser.add_argument("--only", nargs="+", help="execute only these notebooks (stem or file name)")
    args = parser.parse_args(argv)
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT[args.scale]
    if not timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds; got {args.timeout}")
    ok = True
    if args.command in ("execute", "all"):
        ok = execute(args.scale, args.force, timeout, args.only)
        if not ok:
            print("error: notebook execution failed; see the reports above", file=sys.stderr)
    if ok and args.command in ("build", "all"):
        ok = build(args.scale)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
