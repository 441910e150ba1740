"""Build pipeline of the book: stage, execute the notebooks with papermill, build the HTML.

    python tools/book.py execute --scale book|smoke [--force] [--timeout S] [--threads N] [--jobs N] [--only NAME ...]
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

Threads. A torch loop with two threads on a 2-core machine runs about 7x slower when another
CPU-bound process holds one core (the threads wait for each other at every parallel region),
while a one-thread loop barely slows down. So, right before each notebook starts, the CPU time
used by *other* processes is sampled for one second (``/proc/stat``; ``os.getloadavg`` where
that file does not exist), and the kernel gets ``OMP_NUM_THREADS`` = ``MKL_NUM_THREADS`` =
the cores left free, rounded down, at least 1 (torch reads them at start-up): all cores on an
idle machine, one fewer per busy process. The alternative, one thread per notebook and two
notebooks at once, was not chosen: it is slower for the one long notebook on an idle machine and
interleaves the runs' logs. A job that starts after a notebook did is not seen (the choice is
made once per notebook); ``--threads N`` fixes the number.

Time limits. Each notebook's limit is a few times (``LIMIT_FACTOR``) its idle time recorded in
``tools/notebook_times.json``, with a floor for kernel start-up (``LIMIT_FLOOR``), stretched when
the machine is oversubscribed: right before the kernel starts, the processes that want a CPU
(``procs_running``, averaged over a second; not capped at the core count as busy cores are) and
the kernel's threads are divided by the cores, and a ratio above 1 multiplies the limit. A build
with a CI run and two training jobs beside it on 2 cores timed out on a fixed limit. A notebook
without a record gets ``DEFAULT_TIMEOUT``; ``--timeout`` overrides both. Every run's wall time,
thread count and limit are written to ``_build/reports-<scale>/times.json`` (merged with earlier
runs), which is where new idle times come from.

Progress bars. The kernels get ``REINMAX_PROGRESS=final``: ``reinmax.experiments.progress_bar``
then prints one line per loop, its final state (nothing for a ``leave=False`` bar), instead of
every redraw (hundreds of lines in a built page).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
SCALES = {
    # papermill parameters per scale; the notebooks' own defaults are the book scale.
    "book": {},
    "smoke": {"smoke": True},
}
# Per-notebook wall-clock limits (seconds) for notebooks without a recorded idle time.
DEFAULT_TIMEOUT = {"book": 1200, "smoke": 300}
# Recorded idle times {scale: {notebook stem: seconds}}; a limit is LIMIT_FACTOR times that, at
# least LIMIT_FLOOR (a kernel alone takes seconds to start on a loaded machine). 4x covers a
# one-thread run beside busy processes (the slowest case the thread choice below leaves).
NOTEBOOK_TIMES = ROOT / "tools" / "notebook_times.json"
LIMIT_FACTOR, LIMIT_FLOOR = 4.0, 120.0
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


def recorded_times(scale: str, key: str = "idle_seconds") -> dict:
    """Idle wall times (seconds) per notebook stem, from tools/notebook_times.json; with
    ``key="alone_seconds"``, those of notebooks that reuse another's training (run first in the
    book) measured when they run alone."""
    try:
        table = json.loads(NOTEBOOK_TIMES.read_text())
    except FileNotFoundError:
        return {}
    times = table.get(key, {}).get(scale, {})
    bad = {k: v for k, v in times.items() if not isinstance(v, (int, float)) or v <= 0}
    if bad:
        raise SystemExit(f"error: {NOTEBOOK_TIMES.relative_to(ROOT)}: idle times must be positive "
                         f"numbers of seconds; got {bad}")
    return times


def time_limit(notebook: Path, scale: str, override, demand: float = 0.0, threads: int = 1) -> float:
    """--timeout if given, else a few times the recorded idle time (stretched by the load), else
    the scale's default."""
    if override is not None:
        return override
    idle = recorded_times(scale).get(notebook.stem)
    if idle is None:
        return DEFAULT_TIMEOUT[scale]
    # A notebook that reads a training run another made can be executed alone: allow for that.
    idle = max(idle, recorded_times(scale, "alone_seconds").get(notebook.stem, 0))
    return load_stretch(demand, threads) * max(LIMIT_FLOOR, LIMIT_FACTOR * idle)


def load_stretch(demand: float, threads: int) -> float:
    """How much longer than LIMIT_FACTOR allows a kernel may need on an oversubscribed machine:
    LIMIT_FACTOR covers one thread beside one busy core per other core; with `demand` runnable
    processes besides it, the kernel's `threads` get their share of the cores, so the limit grows
    by (demand + threads) / cores when that exceeds 1. (A limit only guards against a hung
    kernel: a generous one costs nothing, a tight one fails a build on a busy laptop.)"""
    cores = os.cpu_count() or 1
    return max(1.0, (demand + threads) / cores)


def runnable_others(window: float = 1.0, samples: int = 10) -> float:
    """Processes other than this one that want a CPU now: /proc/stat's procs_running, averaged
    over `window` seconds. Unlike busy_cores it is not capped at the core count, so it tells two
    competing jobs from five; 0.0 where the file does not exist."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/stat") as stat:
                line = next(l for l in stat if l.startswith("procs_running"))
            counts.append(max(0.0, float(line.split()[1]) - 1.0))   # minus the reader itself
        except (OSError, StopIteration, ValueError, IndexError):
            return 0.0
        time.sleep(window / samples)
    return sum(counts) / len(counts)


def busy_cores(window: float = 1.0) -> float:
    """How many cores other processes keep busy now: /proc/stat over `window` seconds (Linux),
    else the 1-minute load average (which lags, and counts our own finished kernel for a minute)."""
    def sample():
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)     # idle + iowait
        return sum(fields[:8]), idle                                      # up to steal
    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    if total1 <= total0:
        return 0.0
    return (os.cpu_count() or 1) * (1.0 - (idle1 - idle0) / (total1 - total0))


def choose_threads(fixed=None) -> tuple:
    """(threads for the next kernel, busy cores measured): the cores left free, at least 1."""
    if fixed is not None:
        return fixed, None
    busy = busy_cores()
    cores = os.cpu_count() or 1
    # +0.25: a core that is 80% free counts as free (the sampler itself and short bursts).
    return max(1, min(cores, int(cores - busy + 0.25))), round(busy, 2)


def kernel_env(threads: int) -> dict:
    """The environment of the papermill/Jupyter Book kernels."""
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", REINMAX_PROGRESS="final",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("MPLBACKEND", None)   # kernels must use the inline backend, or figures are not captured
    return env


TIMES_LOCK = threading.Lock()   # notebooks run side by side (--jobs) record into one file


def record_time(scale: str, name: str, entry: dict) -> None:
    """Merge one run into _build/reports-<scale>/times.json, written atomically."""
    with TIMES_LOCK:
        _merge_time(scale, name, entry)


def _merge_time(scale: str, name: str, entry: dict) -> None:
    path = BUILD / f"reports-{scale}" / "times.json"
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[name] = entry
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def kill_group(process: subprocess.Popen) -> None:
    """papermill starts a kernel process; end the whole session we started, not just papermill."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def execute_one(notebook: Path, scale: str, override, force: bool, threads=None) -> bool:
    """Execute one notebook under papermill; `override` is --timeout (None: time_limit's rule)."""
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
    threads, busy = choose_threads(threads)
    demand = max(busy or 0.0, runnable_others(window=0.5))
    timeout = time_limit(notebook, scale, override, demand, threads)
    command = [sys.executable, "-m", "papermill", str(notebook), str(report),
               "--cwd", str(staged_notebooks), "--kernel", "python3", "--no-progress-bar",
               "--log-output", "--execution-timeout", str(int(timeout))]
    for key, value in SCALES[scale].items():
        command += ["-p", key, str(value)]
    env = kernel_env(threads)
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
    record_time(scale, notebook.stem, {
        "seconds": round(seconds, 1), "ok": code == 0, "threads": threads, "busy_cores": busy,
        "limit_s": round(timeout), "cores": os.cpu_count(), "runnable_others": round(demand, 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if code == 0:
        data = json.loads(report.read_text())
        data["metadata"]["reinmax_book"] = {"source_hash": digest, "scale": scale,
                                            "seconds": round(seconds, 1), "threads": threads}
        executed.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"  {notebook.name}: executed in {seconds:.0f} s ({threads} thread(s), "
              f"busy cores before: {busy}, other runnable processes: {demand:.1f}, "
              f"limit {timeout:.0f} s)")
        return True
    why = f"timed out after {timeout:.0f} s" if code is None else f"failed (exit status {code})"
    tail = log.read_text(errors="replace").splitlines()[-25:]
    print(f"  {notebook.name}: {why}; report kept: {report.relative_to(ROOT)}, "
          f"log: {log.relative_to(ROOT)}\n    " + "\n    ".join(tail), file=sys.stderr)
    return False


def queues(selected: list, scale: str) -> list:
    """The notebooks as queues that may run side by side: the notebooks that share one training
    run (``shared_run_folder``: the first trains it, the others read it) form one queue, run in
    order; every other notebook is a queue of its own. Longest first (by recorded idle time), so
    that the last queue to start is a short one."""
    shared = [nb for nb in selected if "shared_run_folder" in nb.read_text()]
    alone = [[nb] for nb in selected if nb not in shared]
    idle = recorded_times(scale)
    length = lambda queue: sum(idle.get(nb.stem, DEFAULT_TIMEOUT[scale] / 10) for nb in queue)  # noqa: E731
    return sorted(([shared] if shared else []) + alone, key=length, reverse=True)


def execute(scale: str, force: bool, timeout=None, only=None, threads=None, jobs: int = 1) -> bool:
    """Execute the notebooks; ``jobs`` > 1 runs that many side by side (each with an equal share
    of the cores, one thread at least), keeping notebooks that share a training run in order."""
    stage(scale)
    selected = [nb for nb in notebooks() if not only or nb.stem in only or nb.name in only]
    if only and not selected:
        raise SystemExit(f"error: --only {only} matches no notebook; notebooks: "
                         f"{[nb.stem for nb in notebooks()]}")
    print(f"executing {len(selected)} notebook(s) at {scale} scale in "
          f"{stage_dir(scale).relative_to(ROOT)}" + (f", {jobs} at a time" if jobs > 1 else ""))
    # Keep going after a failure so one run reports every broken notebook.
    if jobs == 1:
        return all([execute_one(nb, scale, timeout, force, threads)
                    for nb in selected])
    share = threads or max(1, (os.cpu_count() or 1) // jobs)

    def run_queue(queue):
        return [execute_one(nb, scale, timeout, force, share)
                for nb in queue]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run_queue, queues(selected, scale)))
    return all(ok for queue in results for ok in queue)


def build(scale: str, threads=None) -> bool:
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
    env = kernel_env(choose_threads(threads)[0])   # markdown chapters' code cells run in kernels too
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
                        help=f"per-notebook limit in seconds (default: {LIMIT_FACTOR:g}x the idle "
                             f"time in tools/notebook_times.json, at least {LIMIT_FLOOR:g} s; "
                             f"without a record: book {DEFAULT_TIMEOUT['book']}, smoke "
                             f"{DEFAULT_TIMEOUT['smoke']})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per kernel (default: the cores other processes leave "
                             "free, measured before each notebook)")
    parser.add_argument("--only", nargs="+", help="execute only these notebooks (stem or file name)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks executed side by side (default 1; `make test` runs the "
                             "smoke scale with 2: its notebooks are mostly kernel start-up)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be an integer >= 1; got {args.jobs}")
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds; got {args.timeout}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be an integer >= 1; got {args.threads}")
    ok = True
    if args.command in ("execute", "all"):
        ok = execute(args.scale, args.force, args.timeout, args.only, args.threads, args.jobs)
        if not ok:
            print("error: notebook execution failed; see the reports above", file=sys.stderr)
    if ok and args.command in ("build", "all"):
        ok = build(args.scale, args.threads)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
