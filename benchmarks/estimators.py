"""Speed and peak memory of every estimator in ``reinmax.ESTIMATORS`` (issue 2, "Benchmark").

    python benchmarks/estimators.py                 # the full run (a few minutes on 2 cores)
    python benchmarks/estimators.py --quick         # seconds: small shapes, a smoke test
    python benchmarks/estimators.py --json out.json # also write every number, atomically
    python benchmarks/estimators.py --register my_estimators.py   # also your registered ones

What is timed: one forward and backward step, ``y_hard, y_soft = estimator(logits, tau)``,
``loss = <y_hard, w1> + <y_soft, w2>``, ``loss.backward()``, with the default settings (input
checks on). The shapes are the paper's Table 3 — (512, 128, 2) for polynomial programming with
128 binary variables and batch 512, (100, 30, 10) for MNIST-VAE with 30 variables of 10
categories — and (256, 64, 64). Repeats are interleaved (each round runs every estimator once,
in a rotated order) so that a change in the machine's load hits all of them alike; each round
times a block of calls long enough to read a clock, and ratios to our ST (same temperature, same
round) and to the official ``reinmax`` 0.1.0 package are taken round by round, then summarised by
their median and interquartile range.

Peak memory: the CPU allocator keeps no peak counter, so each (estimator, shape) runs in a fresh
subprocess that builds the inputs, warms the code up on a tiny input, resets the kernel's
resident-set high-water mark (writing 5 to ``/proc/self/clear_refs``), runs one step and reads
the mark (``VmHWM`` in ``/proc/self/status``): its rise over the resident size before the step
is the extra memory the step needed at its peak. The subprocess runs with
``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc maps every tensor of 64 KiB or more afresh and
unmaps it when freed; freed heap pages would otherwise be reused unseen. Without ``/proc`` the
process's whole peak (``ru_maxrss``) is printed as an upper bound, "<=".

The official package is fetched once with ``pip download --no-deps reinmax==0.1.0`` into a cache
folder (``$REINMAX_BENCH_CACHE`` or ``~/.cache/reinmax-bench``), unpacked, and its module file
loaded with importlib under the name ``reinmax_official`` (it is also called ``reinmax``).
``--quick`` never downloads; it uses the cache when it is there.
"""
import argparse
import datetime
import functools
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))   # run from a checkout without installing the package

import torch  # noqa: E402

import reinmax  # noqa: E402
from reinmax.experiments.records import provenance, write_json  # noqa: E402
from reinmax.estimators.sampling import inverse_cdf, uniform  # noqa: E402  (the sampler under test)

FULL_SHAPES = [(512, 128, 2), (100, 30, 10), (256, 64, 64)]
QUICK_SHAPES = [(64, 16, 2), (20, 6, 10), (16, 8, 64)]
GR_MCK_SAMPLES = (100, 300, 1000)
OFFICIAL = "ReinMax (official 0.1.0)"
OFFICIAL_VERSION = "0.1.0"


# ------------------------------------------------------------------ the official package
def _cache_dir() -> Path:
    return Path(os.environ.get("REINMAX_BENCH_CACHE", Path.home() / ".cache" / "reinmax-bench"))


def official_module_file(download: bool):
    """Path of the official package's ``reinmax/reinmax.py``, or (None, why it is missing)."""
    target = _cache_dir() / "official"
    module = target / "reinmax" / "reinmax.py"
    if module.is_file():
        return module, None
    if not download:
        return None, f"not in the cache {target} (--quick does not download)"
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   f"reinmax=={OFFICIAL_VERSION}", "-d", folder]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"pip download failed ({type(error).__name__})"
        files = sorted(Path(folder).iterdir())
        if not files:
            return None, "pip download produced no file"
        archive = files[0]
        target.mkdir(parents=True, exist_ok=True)
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                wheel.extractall(target)
        else:   # an sdist: reinmax-0.1.0/reinmax/reinmax.py
            with tarfile.open(archive) as sdist:
                sdist.extractall(target, filter="data")
            for found in target.glob("*/reinmax/reinmax.py"):
                module.parent.mkdir(parents=True, exist_ok=True)
                module.write_text(found.read_text())
    if not module.is_file():
        return None, f"the download has no reinmax/reinmax.py (looked in {target})"
    return module, None


def load_official(path: Path):
    """The official ``reinmax`` function, loaded under another module name."""
    spec = importlib.util.spec_from_file_location("reinmax_official", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reinmax


# ------------------------------------------------------------------ what is measured
def import_registering(modules):
    """Import each module (a dotted name, or a path to a .py file) for the estimators it
    registers with ``reinmax.estimators.registry.register`` when imported; they are then measured too."""
    for index, module in enumerate(modules or ()):
        if module.endswith(".py"):
            spec = importlib.util.spec_from_file_location(f"registered_estimators_{index}", module)
            if spec is None or not Path(module).is_file():
                raise FileNotFoundError(f"--register: no such file {module!r}")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        else:
            importlib.import_module(module)


def estimator_table(official_path):
    """(label, function) for every registered straight-through estimator (later registrations
    included); GR-MCK at the paper's sample counts."""
    table = []
    for name, function in reinmax.ESTIMATORS.items():
        if name == "GR-MCK":
            table += [(f"GR-MCK (K={k})", functools.partial(function, K=k)) for k in GR_MCK_SAMPLES]
        else:
            table.append((name, function))
    if official_path is not None:
        table.append((OFFICIAL, load_official(official_path)))
    return table


def work_size(label: str, shape) -> int:
    """Elements in the largest tensor a step makes: K copies of the logits for GR-MCK."""
    numel = 1
    for size in shape:
        numel *= size
    if label.startswith("GR-MCK (K="):
        numel *= int(label[len("GR-MCK (K="):-1])
    return numel


def make_inputs(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator).requires_grad_()
    w_hard = torch.randn(shape, generator=generator)
    w_soft = torch.randn(shape, generator=generator)
    return logits, w_hard, w_soft


def step(function, tau, logits, w_hard, w_soft):
    y_hard, y_soft = function(logits, tau)
    ((y_hard * w_hard).sum() + (y_soft * w_soft).sum()).backward()
    logits.grad = None


def seconds_per_call(call, inner: int):
    """(wall-clock, CPU) seconds per call over ``inner`` calls. CPU time (all threads of this
    process) leaves out the time the process waited for a core, so it is the steadier of the
    two when other programs load the machine; wall-clock time is what a user waits."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(inner):
        call()
    return (time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner


def calibrate(call, block: float) -> int:
    """Calls per timed block so that a block lasts about ``block`` seconds (at least one)."""
    call()   # warm up: first-call costs (allocation, lazy initialisation) are not what we time
    once = seconds_per_call(call, 1)[0]
    return max(1, int(block / max(once, 1e-7)))


def quartiles(values):
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"median": at(0.5), "q25": at(0.25), "q75": at(0.75), "n": len(ordered)}


def time_interleaved(calls, rounds: int, slow_rounds: int, block: float, slow: float):
    """Per-call seconds of every call for each round. Calls slower than ``slow`` seconds run
    only in the first ``slow_rounds`` rounds (their spread says how little that is)."""
    inner = {label: calibrate(call, block) for label, call in calls.items()}
    once = {label: seconds_per_call(call, 1)[0] for label, call in calls.items()}
    samples = {label: [] for label in calls}
    labels = list(calls)
    for r in range(rounds):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if once[label] > slow and r >= slow_rounds:
                continue
            samples[label].append(seconds_per_call(calls[label], inner[label]))
    return samples


def ratios(samples, numerator: str, denominator: str, clock: int = 0):
    """Round-by-round ratios (both ran in the same rounds: the first rounds of the slower);
    ``clock`` 0 is wall-clock time, 1 CPU time."""
    pairs = zip(samples[numerator], samples[denominator])
    if not (samples[numerator] and samples[denominator]):
        return None
    return quartiles([a[clock] / b[clock] for a, b in pairs])


def milliseconds(times, clock: int = 0):
    return quartiles([1e3 * t[clock] for t in times])


# ------------------------------------------------------------------ peak memory
def status_kib(field: str):
    """A field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: its high-water mark)."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def memory_worker(spec: dict) -> dict:
    """Run in a fresh process: the rise of the resident high-water mark over one step."""
    torch.set_num_threads(spec["threads"])
    import_registering(spec.get("register"))
    official = spec.get("official")
    function = (load_official(Path(official)) if spec["label"] == OFFICIAL
                else dict(estimator_table(None))[spec["label"]])
    shape, tau = tuple(spec["shape"]), spec["tau"]
    step(function, tau, *make_inputs((2, shape[-1])))    # code paths warmed up on a tiny input
    inputs = make_inputs(shape)
    try:
        # Reset this process's high-water mark to its resident size (Linux >= 4.0). VmHWM is
        # read rather than ru_maxrss, which also remembers the parent's size at exec.
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
        before = status_kib("VmRSS")
        step(function, tau, *inputs)
        return {"peak_mib": (status_kib("VmHWM") - before) / 1024, "bound": False}
    except OSError:
        # No /proc: the rise over the old mark (ru_maxrss) bounds the step's peak from above.
        before_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
        step(function, tau, *inputs)
        return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "bound": True, "note": f"no /proc; high-water mark before: {before_peak} KiB"}


def measure_memory(label, shape, tau, official_path, threads, register=()):
    spec = {"label": label, "shape": list(shape), "tau": tau, "threads": threads,
            "official": str(official_path) if official_path else None, "register": list(register)}
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", json.dumps(spec)]
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True,
                              env=environment)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return {"error": f"{type(error).__name__}: {str(error)[-200:]}"}


# ------------------------------------------------------------------ sampling
def time_sampling(shape, rounds, block):
    """torch.multinomial against the inverse-CDF sampler of reinmax, interleaved."""
    probs = torch.softmax(make_inputs(shape)[0].detach(), -1)
    flat = probs.reshape(-1, shape[-1])
    calls = {
        "torch.multinomial": lambda: torch.multinomial(flat, 1),
        "inverse CDF": lambda: inverse_cdf(probs, uniform(probs.shape[:-1], probs, None)),
    }
    samples = time_interleaved(calls, rounds, rounds, block, slow=float("inf"))
    return {"multinomial_ms": milliseconds(samples["torch.multinomial"]),
            "inverse_cdf_ms": milliseconds(samples["inverse CDF"]),
            "multinomial_over_inverse_cdf": ratios(samples, "torch.multinomial", "inverse CDF"),
            "multinomial_over_inverse_cdf_cpu": ratios(samples, "torch.multinomial", "inverse CDF", 1)}


# ------------------------------------------------------------------ reporting
def machine():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as stream:
            names = [line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    info = provenance("cpu")
    info.update({"cpu_model": model, "cpu_count": os.cpu_count(),
                 "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
                 "python_version": platform.python_version(),
                 "validate_args": reinmax.validate_args_enabled(),
                 "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})
    return info


def fmt_quartiles(q, scale=1.0, digits=2):
    if q is None:
        return "-"
    return f"{q['median'] * scale:.{digits}f} [{q['q25'] * scale:.{digits}f}-{q['q75'] * scale:.{digits}f}]"


def print_table(shape, tau, rows, has_official):
    print(f"\nshape {tuple(shape)}, tau = {tau}   (median [25th-75th percentile] over rounds; "
          "wall-clock unless marked CPU)")
    header = f"{'estimator':<26} {'ms per step':>22} {'x our ST':>17}"
    header += f" {'x official':>17}" if has_official else ""
    header += f" {'CPU x our ST':>17}" + (f" {'CPU x official':>17}" if has_official else "")
    header += f" {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    for label, row in rows.items():
        if "skipped" in row:
            print(f"{label:<26} skipped: {row['skipped']}")
            continue
        line = f"{label:<26} {fmt_quartiles(row['ms'], digits=3):>22} {fmt_quartiles(row['x_st']):>17}"
        if has_official:
            line += f" {fmt_quartiles(row.get('x_official')):>17}"
        line += f" {fmt_quartiles(row['cpu_x_st']):>17}"
        if has_official:
            line += f" {fmt_quartiles(row.get('cpu_x_official')):>17}"
        memory = row.get("memory") or {}
        if "peak_mib" in memory:
            peak = f"{memory['peak_mib']:.1f}"
            line += f" {('<=' + peak) if memory['bound'] else peak:>9}"
        else:
            line += f" {'-' if not memory else 'error':>9}"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="seconds: small shapes, few rounds, no download (a smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write all results here (atomically)")
    parser.add_argument("--taus", type=float, nargs="+",
                        help="temperatures (default: 1.0 1.3; quick 1.3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 21; quick 3)")
    parser.add_argument("--max-elements", type=float, default=1.5e8,
                        help="skip GR-MCK when K x numel exceeds this (default 1.5e8, ~0.6 GB a tensor)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: torch's own choice, recorded in the output)")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit with status 1 when a speed target is missed")
    parser.add_argument("--register", metavar="MODULE", action="append", default=[],
                        help="import MODULE (dotted name or .py file) first, so that the estimators "
                             "it registers are measured too (repeatable)")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_worker:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return 0
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be a positive integer; got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be a positive integer; got {args.rounds}")
    if args.taus is None:
        args.taus = [1.3] if args.quick else [1.0, 1.3]
    if any(not (0 < tau < float("inf")) for tau in args.taus):
        parser.error(f"--taus must be positive finite numbers; got {args.taus}")

    try:
        import_registering(args.register)
    except Exception as error:   # a missing file, an import error, a clashing name
        parser.error(f"--register: {type(error).__name__}: {error}")

    quick = args.quick
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    rounds = args.rounds or (3 if quick else 21)
    slow_rounds = 1 if quick else 5
    block = 0.002 if quick else 0.02
    max_elements = min(args.max_elements, 3e5) if quick else args.max_elements

    official_path, why_not = official_module_file(download=not quick)
    table = estimator_table(official_path)
    info = machine()
    print("Estimator benchmark (benchmarks/estimators.py)" + ("  --quick: numbers not meaningful" if quick else ""))
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    for key in ("date", "cpu_model", "cpu_count", "torch_threads", "torch_version", "python_version",
                "git_commit", "validate_args", "load_average_at_start"):
        print(f"  {key}: {info.get(key)}")
    print(f"  official reinmax {OFFICIAL_VERSION}: "
          + (f"loaded from {official_path}" if official_path else f"absent, {why_not}; its ratios are skipped"))
    print(f"  timing: {rounds} interleaved rounds (estimators slower than 0.25 s a step: "
          f"{slow_rounds}); peak memory: "
          + ("skipped (--no-memory)" if args.no_memory else
             "rise of the resident high-water mark (VmHWM) over one step, in a fresh "
             "subprocess per estimator and shape"
             + (" (quick: ST and ReinMax only)" if quick else "")))

    record = {"machine": info, "quick": quick, "rounds": rounds, "official": str(official_path)
              if official_path else None, "official_missing_because": why_not, "results": [],
              "sampling": [], "targets": []}
    for shape in shapes:
        for tau in args.taus:
            inputs = make_inputs(shape)
            rows, calls = {}, {}
            for label, function in table:
                rows[label] = {}
                if work_size(label, shape) > max_elements:
                    rows[label] = {"skipped": f"K x numel = {work_size(label, shape):.2g} > "
                                              f"{max_elements:.2g} elements (--max-elements)"}
                else:
                    calls[label] = functools.partial(step, function, tau, *inputs)
            samples = time_interleaved(calls, rounds, slow_rounds, block, slow=0.25)
            for label in calls:
                rows[label] = {"ms": milliseconds(samples[label]),
                               "cpu_ms": milliseconds(samples[label], 1),
                               "x_st": ratios(samples, label, "ST"),
                               "cpu_x_st": ratios(samples, label, "ST", 1)}
                if official_path:
                    rows[label]["x_official"] = ratios(samples, label, OFFICIAL)
                    rows[label]["cpu_x_official"] = ratios(samples, label, OFFICIAL, 1)
                if not args.no_memory and tau == args.taus[0] and (not quick or label in ("ST", "ReinMax")):
                    rows[label]["memory"] = measure_memory(label, shape, tau, official_path,
                                                           torch.get_num_threads(), args.register)
            print_table(shape, tau, rows, official_path is not None)
            record["results"].append({"shape": list(shape), "tau": tau, "rows": rows})
            target = {"shape": list(shape), "tau": tau, "reinmax_x_st": rows["ReinMax"]["x_st"],
                      "reinmax_cpu_x_st": rows["ReinMax"]["cpu_x_st"],
                      "reinmax_x_st_met": rows["ReinMax"]["x_st"]["median"] <= 1.5}
            if official_path:
                target["reinmax_x_official"] = rows["ReinMax"]["x_official"]
                target["reinmax_cpu_x_official"] = rows["ReinMax"]["cpu_x_official"]
                target["reinmax_x_official_met"] = rows["ReinMax"]["x_official"]["median"] <= 0.5
            record["targets"].append(target)

    print("\nSampling: torch.multinomial against reinmax's inverse CDF (cumsum + binary search)")
    for shape in shapes:
        result = time_sampling(shape, rounds, block)
        record["sampling"].append({"shape": list(shape), **result})
        print(f"  {str(tuple(shape)):<15} multinomial {fmt_quartiles(result['multinomial_ms'], digits=3)} ms"
              f"   inverse CDF {fmt_quartiles(result['inverse_cdf_ms'], digits=3)} ms"
              f"   ratio {fmt_quartiles(result['multinomial_over_inverse_cdf'])}"
              f" (CPU {fmt_quartiles(result['multinomial_over_inverse_cdf_cpu'])})")

    print("\nTargets (issue 2; judged on the median wall-clock ratio, CPU-time ratio in brackets):"
          " ReinMax <= 0.5x official, <= 1.5x our ST")
    missed = False
    for target in record["targets"]:
        parts = [f"x ST {target['reinmax_x_st']['median']:.2f} [{target['reinmax_cpu_x_st']['median']:.2f}] "
                 f"({'met' if target['reinmax_x_st_met'] else 'MISSED'})"]
        missed |= not target["reinmax_x_st_met"]
        if "reinmax_x_official" in target:
            parts.append(f"x official {target['reinmax_x_official']['median']:.2f} "
                         f"[{target['reinmax_cpu_x_official']['median']:.2f}] "
                         f"({'met' if target['reinmax_x_official_met'] else 'MISSED'})")
            missed |= not target["reinmax_x_official_met"]
        else:
            parts.append("x official: not measured (package absent)")
        print(f"  {str(tuple(target['shape'])):<15} tau={target['tau']:<4} " + ", ".join(parts))

    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average (1, 5, 15 min) at the end: {info['load_average_at_end']}"
          " (other programs on the machine; they slow wall-clock times, less so CPU times)")
    if args.json:
        write_json(args.json, record)
        print(f"\nwrote {args.json}")
    return 1 if (args.check_targets and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
