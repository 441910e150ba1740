"""Run a grid's cells on an engine and keep their records: one mechanism for every experiment.

The driver (the process that calls :func:`run_sweep`) plans: it expands the grid (every cell
validated before anything trains) and reads the finished records in ``out_dir`` (a finished cell
is never trained again). The engine trains the other cells, each in a *workspace* folder where the
experiment keeps its checkpoint (a half-finished cell resumes from it), and hands each record back
to the driver as a value (not through a shared disk: a real cluster has none). The driver writes
it atomically to ``out_dir/<cell path>`` and appends one line to ``out_dir/sweep_journal.jsonl``
(which the tests read to prove that no record is written twice).

Engines:

- ``"local"``: one worker trains in this process; several are a process pool (spawned processes,
  one torch thread each).
- ``"ray"``: plain Ray tasks, one per cell, retried by Ray when a worker process or a node dies
  (``max_retries``). Not Ray Tune: a cell is one call that returns one record and checkpoints
  itself through the experiment layer, which is exactly a task; Tune would add its own trial
  state, its own storage (shared or cloud, for ``Tuner.restore`` across nodes) and about 1.5 s
  per trial, and nothing the grid needs (no early stopping, no search beyond the grid). A task's
  workspace is on its worker's local disk (``<tmp>/reinmax-sweep/<fingerprint>``): a retry on the
  same node resumes from the checkpoint, one on another node starts that cell again.

Torch threads are pinned (``threads``, 1 by default) in every engine: float32 results differ
between 1 and 2 threads, and a sweep's records must not depend on the engine.

SIGINT or SIGTERM to the driver stops the sweep (``reinmax.sweep.run.SweepInterrupted``): the local workers
are terminated at once (queued cells never start; a running cell keeps its last checkpoint), Ray
tasks are cancelled, and every record the driver received is written with its journal line (a
signal that arrives while one is written waits until both are), so the same sweep again trains
only the missing cells.
"""
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from reinmax.experiments import layer, progress_bar
from .grid import Cell, Grid, experiment

ENGINES = ("local", "ray")
JOURNAL = "sweep_journal.jsonl"
FAULT_ENV = "REINMAX_SWEEP_FAULT"
_OWNER = "run_sweep"


class SweepFailed(RuntimeError):
    """Some cells failed (after the engine's retries); the others' records are kept."""

    def __init__(self, failures: Dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  {path}: {error}" for path, error in failures.items())
        super().__init__(f"{len(failures)} cell(s) failed (the finished ones are kept; run the "
                         f"same sweep again to retry these):\n{lines}")


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the sweep; the finished records are kept. ``status`` is the
    shell's convention for a process stopped by that signal (130 for SIGINT, 143 for SIGTERM).
    A KeyboardInterrupt, so that the ``except Exception`` of an experiment lets it through."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        self.status = 128 + signum
        super().__init__(message or signal.Signals(signum).name)


class _Signals:
    """While a sweep runs in the main thread, SIGINT and SIGTERM raise ``SweepInterrupted``
    (only where their handlers are Python's defaults: a program's own handlers are left alone).
    Inside ``held()`` a signal waits until the block ends: a record and its journal line are
    written together or not at all. After the first signal the others are ignored, so that
    stopping the workers is not itself interrupted."""

    HANDLED = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def __init__(self):
        self.previous: Dict[int, Any] = {}
        self.holding = False
        self.pending: Optional[int] = None
        self.received: Optional[int] = None

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for signum, default in self.HANDLED.items():
                if signal.getsignal(signum) is default:
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            return
        if self.holding:
            self.pending = signum
            return
        self.received = signum
        raise SweepInterrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            self.received, self.pending = self.pending, None
            raise SweepInterrupted(self.received)


# ------------------------------------------------------------------------ one cell, anywhere
def _fault(cell: Cell) -> None:
    """Tests inject faults deterministically: when the file named by $REINMAX_SWEEP_FAULT exists,
    the first cell (of index >= its ``from_cell``, and not on node ``not_node``, where cells wait
    until another has claimed it) that claims it
    (an atomic rename: exactly one cell does) carries out its ``action``: ``kill-worker`` (this
    process dies), ``kill-driver`` (SIGKILL to ``driver_pid``, then the cell trains on) or
    ``hold`` (write ``<marker>.held`` with this process's node and wait to be killed)."""
    marker = os.environ.get(FAULT_ENV)
    if not marker or not os.path.exists(marker):
        return
    try:
        order = json.loads(Path(marker).read_text())
    except (OSError, ValueError):
        return
    if cell.index < order.get("from_cell", 0):
        return
    node = None
    if "not_node" in order:
        import ray
        node = ray.get_runtime_context().get_node_id()
        if node == order["not_node"]:
            # Keep this node busy until a cell on another node has claimed the fault: otherwise
            # a fast node could finish every cell before the other node runs any (under load).
            _wait_for(marker + ".claimed", seconds=120)
            return
    try:
        os.rename(marker, marker + ".claimed")
    except OSError:
        return                                   # another cell claimed it
    action = order["action"]
    if action == "kill-worker":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "kill-driver":
        os.kill(order["driver_pid"], signal.SIGKILL)
    elif action == "hold":
        Path(marker + ".held").write_text(json.dumps({"node": node, "pid": os.getpid(),
                                                      "cell": cell.path}))
        time.sleep(120)
        raise RuntimeError("hold: nobody removed this node within 120 s")


def _wait_for(path: str, seconds: float) -> None:
    """Wait until ``path`` exists (at most ``seconds``): a test's ordering, checked every 50 ms."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def execute(cell: Cell, workspace: Optional[str], threads: int = 1) -> Dict[str, Any]:
    """Train one cell (resuming from ``workspace``'s checkpoint) and return its record, with
    torch pinned to ``threads`` threads for the call."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _fault(cell)
        if workspace is not None:
            Path(workspace).mkdir(parents=True, exist_ok=True)
        return experiment(cell.experiment).train(cell, None if workspace is None
                                                 else Path(workspace))
    finally:
        torch.set_num_threads(before)


def _worker_workspace(cell: Cell) -> str:
    """A Ray task's workspace: on its own node's disk, keyed by what decides the numbers."""
    return os.path.join(tempfile.gettempdir(), "reinmax-sweep", cell.experiment, cell.fingerprint)


def _execute_on_worker(cell: Cell, threads: int) -> Dict[str, Any]:
    return execute(cell, _worker_workspace(cell), threads)


def _ignore_interrupts() -> None:
    """A local worker ignores SIGINT (Ctrl-C reaches the whole process group): the driver stops
    it, instead of every worker printing its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel the queued cells and terminate the worker processes now (``shutdown`` alone waits
    for every cell already handed to a worker). The executor has no public handle on its
    processes before Python 3.14 (``terminate_workers``), hence ``_processes``."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------ engines
Outcome = Tuple[Cell, Optional[Dict[str, Any]], Optional[BaseException]]


def _local(cells: Sequence[Cell], workspaces: Dict[str, Optional[str]], workers: int,
           threads: int, counts: Dict[str, int], found: Callable[[Cell], Optional[dict]]
           ) -> Iterator[Outcome]:
    if workers == 1:
        for cell in cells:
            counts["running"] = 1
            # Looked for again just before training: another driver may have finished it.
            if found(cell) is not None:
                yield cell, None, None
                continue
            try:
                record = execute(cell, workspaces[cell.path], threads)
            except Exception as error:           # noqa: BLE001 - reported, the sweep goes on
                yield cell, None, error
            else:
                yield cell, record, None
        return
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_interrupts) as pool:
        futures = {pool.submit(execute, cell, workspaces[cell.path], threads): cell
                   for cell in cells}
        unseen = set(futures)
        counts["running"] = min(workers, len(futures))
        try:
            for future in concurrent.futures.as_completed(futures):
                unseen.discard(future)
                try:
                    yield futures[future], future.result(), None
                except concurrent.futures.process.BrokenProcessPool:
                    raise RuntimeError("a local worker process died; the finished cells are "
                                       "kept: run the same sweep again to finish the rest") from None
                except Exception as error:           # noqa: BLE001
                    yield futures[future], None, error
        except SweepInterrupted:
            _stop_workers(pool)
            # cells that finished as the signal came are kept too
            for future in unseen:
                if future.done() and not future.cancelled() and future.exception() is None:
                    yield futures[future], future.result(), None
            raise
        except BaseException:                    # the driver failed, or closed this generator
            _stop_workers(pool)
            raise


def _ray(cells: Sequence[Cell], workers: int, threads: int, address: Optional[str],
         retries: int, counts: Dict[str, int]) -> Iterator[Outcome]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("engine='ray' needs Ray: pip install 'reinmax-book[ray]' "
                           "(ray==2.60.0)") from None
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address is None:
            # A private cluster on this machine (never one found in a stale address file).
            ray.init(address="local", num_cpus=workers, include_dashboard=False,
                     log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    futures = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=retries)(_execute_on_worker)
        futures = {task.remote(cell, threads): cell for cell in cells}
        while futures:
            counts["running"] = len(futures)
            done, _ = ray.wait(list(futures), num_returns=1)
            for future in done:
                cell = futures.pop(future)
                try:
                    yield cell, ray.get(future), None
                except Exception as error:       # noqa: BLE001
                    yield cell, None, error
    except BaseException:
        # a running cluster would go on training the cells nobody waits for any more
        for future in futures:
            ray.cancel(future, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------------ the driver
def _write(out_dir: Path, cell: Cell, record: Dict[str, Any]) -> None:
    layer.write_json(out_dir / cell.path, record)
    line = json.dumps({"record": cell.path, "fingerprint": cell.fingerprint,
                       "driver_pid": os.getpid(), "written_at": time.time()})
    with open(out_dir / JOURNAL, "a") as journal:    # one short line: appended whole
        journal.write(line + "\n")


def run_sweep(grid: Union[Grid, Dict[str, Any], Sequence[Grid]], out_dir: Union[str, Path, None] = None, *,
              engine: str = "local", workers: int = 1, address: Optional[str] = None,
              retries: int = 3, threads: int = 1, progress: bool = True
              ) -> List[Tuple[Cell, Dict[str, Any]]]:
    """Run every cell of ``grid`` that has no finished record in ``out_dir``; return
    ``[(cell, record), ...]`` in the grid's order (``grid`` may be a list of grids of one
    experiment: their cells in turn).

    ``out_dir`` None keeps nothing (every cell trains, in memory, without checkpoints).
    ``engine`` "local" (``workers`` processes; 1: this process) or "ray" (``address`` of a
    running cluster, or None for a private one of ``workers`` CPUs; each task retried up to
    ``retries`` times when its process or node dies). A cell that still fails is reported by
    :class:`SweepFailed` after every other cell has finished and been written. SIGINT or SIGTERM
    stops the workers and raises ``SweepInterrupted`` (see the module's docstring).
    """
    grids = list(grid) if isinstance(grid, (list, tuple)) else [grid]
    grids = [g if isinstance(g, Grid) else Grid.from_dict(g) for g in grids]
    if not grids or len({g.experiment for g in grids}) != 1:
        layer.fail(_OWNER, "grid", grid, "a grid, or a non-empty list of grids of one experiment")
    if engine not in ENGINES:
        layer.fail(_OWNER, "engine", engine, f"one of {list(ENGINES)}")
    workers = layer.positive_int(_OWNER, "workers", workers)
    threads = layer.positive_int(_OWNER, "threads", threads)
    retries = layer.non_negative_int(_OWNER, "retries", retries)
    if engine == "local" and address is not None:
        layer.fail(_OWNER, "address", address, "None with engine='local'")
    # Every cell validated (its config built) before anything trains; cells of several grids
    # are one sweep (numbered in order; one record file each).
    cells: List[Cell] = []
    paths: Dict[str, str] = {}
    for one in grids:
        for cell in one.cells():
            if paths.get(cell.path, cell.fingerprint) != cell.fingerprint:
                layer.fail(_OWNER, "grid", [g.as_dict() for g in grids], "grids whose different "
                           f"cells keep their records in distinct files ({cell.path} twice)")
            if cell.path not in paths:
                paths[cell.path] = cell.fingerprint
                cells.append(dataclasses.replace(cell, index=len(cells)))
    spec = experiment(grids[0].experiment)
    out = None if out_dir is None else Path(out_dir)
    records: Dict[str, Dict[str, Any]] = {}
    if out is not None:
        for cell in cells:
            found = spec.finished(out, cell)
            if found is not None:
                records[cell.path] = found
    pending = [cell for cell in cells if cell.path not in records]
    # Local workspaces: beside the records, removed once the record is written.
    workspaces = {cell.path: (None if out is None else str(out / ".partial" / cell.path[:-5]))
                  for cell in pending}
    if engine == "ray" and out is None:
        layer.fail(_OWNER, "out_dir", out_dir, "a folder for the records with engine='ray'")
    counts = {"running": 0}
    failures: Dict[str, str] = {}
    bar = progress_bar(total=len(cells), initial=len(records), desc=f"sweep ({engine})",
                       disable=not progress)
    def found(cell):
        return None if out is None else spec.finished(out, cell)
    outcomes = (_local(pending, workspaces, workers, threads, counts, found)
                if engine == "local"
                else _ray(pending, workers, threads, address, retries, counts))
    try:
        with _Signals() as signals:
            for cell, record, error in outcomes:
                if error is not None:
                    failures[cell.path] = f"{type(error).__name__}: {error}"
                elif record is None:                     # finished meanwhile by another driver
                    records[cell.path] = found(cell)
                    bar.update(1)
                else:
                    with signals.held():
                        if out is not None:
                            _write(out, cell, record)
                            if workspaces.get(cell.path):
                                shutil.rmtree(workspaces[cell.path], ignore_errors=True)
                        records[cell.path] = record
                    bar.update(1)
                counts["running"] = max(0, counts["running"] - 1)
                bar.set_postfix(done=len(records), running=counts["running"],
                                failed=len(failures))
    except SweepInterrupted as stop:
        kept = f"kept in {out}" if out is not None else "not kept (no out_dir)"
        raise SweepInterrupted(stop.signum, (
            f"{signal.Signals(stop.signum).name} stopped the sweep: {len(records)} of "
            f"{len(cells)} cells finished ({kept}); the same sweep again trains the other "
            f"{len(cells) - len(records)}")) from None
    finally:
        outcomes.close()                             # stops the workers if still running
        bar.close()
    if failures:
        raise SweepFailed(failures)
    partial = None if out is None else out / ".partial"
    if partial is not None and partial.is_dir() and not any(p.is_file() for p in partial.rglob("*")):
        shutil.rmtree(partial, ignore_errors=True)
    return [(cell, records[cell.path]) for cell in cells]


def finished_cells(grid: Union[Grid, Dict[str, Any]], out_dir: Union[str, Path]
                   ) -> Tuple[List[Tuple[Cell, Dict[str, Any]]], List[Cell]]:
    """``(finished, missing)``: the ``(cell, record)`` pairs whose records ``out_dir`` holds and
    the cells it does not; trains nothing (what ``python -m reinmax.sweep status`` counts)."""
    grid = grid if isinstance(grid, Grid) else Grid.from_dict(grid)
    spec = experiment(grid.experiment)
    finished, missing = [], []
    for cell in grid.cells():
        record = spec.finished(Path(out_dir), cell)
        if record is None:
            missing.append(cell)
        else:
            finished.append((cell, record))
    return finished, missing
