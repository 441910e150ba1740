"""tools/book.py's choices that `make book` depends on: threads from the load, time limits from
the recorded idle times, the kernels' environment, and the per-run times file."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("book_tool", ROOT / "tools" / "book.py")
book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book)


def test_recorded_idle_times_are_positive_seconds_of_known_notebooks():
    times = book.recorded_times("book")
    assert times, "tools/notebook_times.json records no book-scale idle time"
    stems = {nb.stem for nb in book.notebooks()}
    # A notebook renamed or split leaves a stale entry: say which, so the file is updated.
    assert set(times) <= stems, f"no such notebook: {sorted(set(times) - stems)}"
    assert all(isinstance(v, (int, float)) and v > 0 for v in times.values())


def test_limit_is_a_few_times_the_idle_time_with_a_floor(monkeypatch):
    monkeypatch.setattr(book, "recorded_times", lambda scale, key="idle_seconds": {"06_slow": 200.0, "01_fast": 5.0} if key == "idle_seconds" else {})
    assert book.time_limit(Path("06_slow.ipynb"), "book", None) == book.LIMIT_FACTOR * 200.0
    assert book.time_limit(Path("01_fast.ipynb"), "book", None) == book.LIMIT_FLOOR
    assert book.time_limit(Path("99_new.ipynb"), "book", None) == book.DEFAULT_TIMEOUT["book"]
    assert book.time_limit(Path("06_slow.ipynb"), "book", 50.0) == 50.0      # --timeout wins


@pytest.mark.parametrize("demand,threads,cores,stretch", [
    (0.0, 2, 2, 1.0),      # idle machine: the recorded idle time's multiple as it is
    (1.0, 1, 2, 1.0),      # one busy core, one thread: what LIMIT_FACTOR already covers
    (2.0, 1, 2, 1.5),      # two jobs beside a one-thread kernel on 2 cores: a third of each core
    (5.0, 1, 2, 3.0),
    (3.0, 1, 8, 1.0)])
def test_limit_stretches_with_the_processes_competing_for_the_cores(monkeypatch, demand, threads,
                                                                    cores, stretch):
    monkeypatch.setattr(book.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(book, "recorded_times", lambda scale, key="idle_seconds": {"08_mid": 30.0, "01_fast": 5.0} if key == "idle_seconds" else {})
    base = book.LIMIT_FACTOR * 30.0
    assert book.load_stretch(demand, threads) == pytest.approx(stretch)
    assert book.time_limit(Path("08_mid.ipynb"), "book", None, demand, threads) == pytest.approx(stretch * base)
    assert book.time_limit(Path("08_mid.ipynb"), "book", 50.0, demand, threads) == 50.0   # --timeout wins
    # The floor is stretched too: a kernel's start-up slows down like the rest.
    assert book.time_limit(Path("01_fast.ipynb"), "book", None, demand, threads) == pytest.approx(stretch * book.LIMIT_FLOOR)


def test_runnable_others_is_a_nonnegative_count():
    assert book.runnable_others(window=0.05, samples=2) >= 0.0


@pytest.mark.parametrize("busy,cores,expected", [(0.02, 2, 2), (0.9, 2, 1), (1.0, 2, 1),
                                                 (2.0, 2, 1), (7.5, 2, 1), (1.0, 8, 7),
                                                 (0.3, 8, 7)])
def test_threads_are_the_cores_left_free(monkeypatch, busy, cores, expected):
    monkeypatch.setattr(book, "busy_cores", lambda window=1.0: busy)
    monkeypatch.setattr(book.os, "cpu_count", lambda: cores)
    assert book.choose_threads()[0] == expected
    assert book.choose_threads(3) == (3, None)          # --threads fixes it


def test_busy_cores_is_a_measurement_between_zero_and_the_core_count():
    busy = book.busy_cores(window=0.2)
    assert 0.0 <= busy <= (book.os.cpu_count() or 1) + 1e-9


def test_kernel_environment(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = book.kernel_env(1)
    assert env["REINMAX_PROGRESS"] == "final"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert "MPLBACKEND" not in env


def test_times_file_merges_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(book, "BUILD", tmp_path)
    (tmp_path / "reports-smoke").mkdir()
    book.record_time("smoke", "01_a", {"seconds": 1.5, "threads": 2})
    book.record_time("smoke", "02_b", {"seconds": 3.0, "threads": 1})
    book.record_time("smoke", "01_a", {"seconds": 1.0, "threads": 1})
    table = json.loads((tmp_path / "reports-smoke" / "times.json").read_text())
    assert table == {"01_a": {"seconds": 1.0, "threads": 1}, "02_b": {"seconds": 3.0, "threads": 1}}
    assert not list((tmp_path / "reports-smoke").glob("*.tmp"))


def test_a_notebook_that_reuses_anothers_training_gets_the_limit_of_running_alone(monkeypatch):
    def times(scale, key="idle_seconds"):
        return {"idle_seconds": {"09_reads": 5.0}, "alone_seconds": {"09_reads": 70.0}}[key]
    monkeypatch.setattr(book, "recorded_times", times)
    assert book.time_limit(Path("09_reads.ipynb"), "book", None) == book.LIMIT_FACTOR * 70.0


def test_notebooks_sharing_a_run_form_one_ordered_queue(tmp_path, monkeypatch):
    """--jobs runs queues side by side: the notebooks that share a training run (the first
    trains it) must stay in order in one queue, every other notebook is a queue of its own, and
    the longest queue starts first."""
    made = {}
    for name, text in [("07_a", "shared_run_folder(x)"), ("08_b", "plain"), ("09_c", "shared_run_folder(y)"),
                       ("10_d", "plain")]:
        made[name] = tmp_path / f"{name}.ipynb"
        made[name].write_text(text)
    monkeypatch.setattr(book, "recorded_times", lambda scale, key="idle_seconds": {"08_b": 500.0, "10_d": 1.0,
                                                                                   "07_a": 10.0, "09_c": 10.0})
    queues = book.queues(list(made.values()), "smoke")
    assert queues == [[made["08_b"]], [made["07_a"], made["09_c"]], [made["10_d"]]]
