"""The experiments' command lines (``python -m reinmax.experiments.<name>``): a bad argument is one
``error:`` line naming the parameter, the value and what is allowed, with status 2 and nothing
written (not a traceback); ``--help`` names the module; all through ``layer.run_cli``."""
import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reinmax.experiments import layer

ROOT = Path(__file__).resolve().parent.parent

# (module, where its main() is, a bad argument list ({out} is a fresh folder), what the line says)
CASES = [
    ("reinmax.experiments.polynomial", "reinmax.experiments.polynomial.cli",
     ["figure1", "--out", "{out}/f.json", "--seeds", "-1"],
     ["seeds must be a non-empty list of distinct non-negative integers", "seeds=[-1]"]),
    ("reinmax.experiments.polynomial", "reinmax.experiments.polynomial.cli",
     ["sweep", "--out", "{out}/s.json", "--methods", "ReinMax-Rao", "--method-options",
      '{{"ReinMax-Rao": {{"R": "quad"}}}}'],
     ["method_options['ReinMax-Rao'] must be options that ReinMax-Rao accepts", "R='quad'"]),
    ("reinmax.experiments.polynomial.figure7", "reinmax.experiments.polynomial.figure7",
     ["panels", "--out-dir", "{out}", "--epochs", "0"],
     ["epochs must be an integer >= 1", "epochs=0"]),
    ("reinmax.experiments.vae", "reinmax.experiments.vae.cli",
     ["--out-dir", "{out}", "--methods", "Nope"],
     ["methods must be a non-empty list of distinct names from", "'Nope' is not one",
      "methods=['Nope']"]),
    ("reinmax.experiments.vae", "reinmax.experiments.vae.cli",
     ["--out-dir", "{out}", "--methods", "ReinMax-CV", "--method-options",
      '{{"ReinMax-CV": {{"nope": 1}}}}'],       # braces doubled: argv goes through format
     ["method_options['ReinMax-CV'] must be options that ReinMax-CV accepts", "'nope'"]),
    ("reinmax.experiments.vae", "reinmax.experiments.vae.cli",
     ["--out-dir", "{out}", "--method-options", "eta=0.5"],
     ["method_options must be a JSON object", "'eta=0.5'"]),
    ("reinmax.experiments.vae_64x32", "reinmax.experiments.vae_64x32.cli",
     ["--out-dir", "{out}", "--seeds", "-1"], ["seeds=[-1]"]),
    ("reinmax.experiments.listops", "reinmax.experiments.listops.cli",
     ["--out-dir", "{out}", "--epochs", "0"], ["epochs must be an integer >= 1", "epochs=0"]),
    ("reinmax.experiments.nas", "reinmax.experiments.nas.cli",
     ["--out-dir", "{out}", "--seeds", "-1"], ["seeds=[-1]"]),
    ("reinmax.experiments.bernoulli_vae", "reinmax.experiments.bernoulli_vae.cli",
     ["--out-dir", "{out}", "--methods", "Nope"], ["'Nope' is not one", "methods=['Nope']"]),
    # the final seeds are checked before the grid's cells train (they used to be checked after)
    ("reinmax.experiments.bernoulli_vae.grid", "reinmax.experiments.bernoulli_vae.grid",
     ["--out-dir", "{out}", "--final-seeds", "-1"],
     ["final_seeds must be a non-empty list of distinct non-negative integers",
      "final_seeds=[-1]"]),
]


def test_a_bad_argument_is_one_error_line_with_status_2_from_every_command_line(tmp_path):
    """Each command as a user runs it (a subprocess; they run side by side): one line on stderr,
    nothing on stdout, status 2, nothing written. Old code: a traceback and status 1."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    running = []
    for module, _, argv, _ in CASES:
        out = tmp_path / module
        command = [sys.executable, "-m", module, *[a.format(out=out) for a in argv]]
        running.append((module, out, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env=environment)))
    try:
        for (module, out, process), (_, _, _, expected) in zip(running, CASES):
            stdout, stderr = process.communicate(timeout=300)   # a guard: old code trained
            lines = stderr.strip().splitlines()
            assert process.returncode == 2 and len(lines) == 1 and not stdout, (module, stderr)
            assert lines[0].startswith("error: ") and all(e in lines[0] for e in expected), (
                module, lines[0])
            assert not out.exists(), module
    finally:                                  # none left running when one fails
        for _, _, process in running:
            if process.poll() is None:
                process.kill()
                process.communicate()


@pytest.mark.parametrize("main_module", sorted({case[1] for case in CASES}))
def test_help_names_the_module_and_argparse_errors_are_one_line_too(main_module, capsys):
    main = importlib.import_module(main_module).main
    command = next(case[0] for case in CASES if case[1] == main_module)
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {command} ")
    with pytest.raises(SystemExit) as stop:
        main(["--no-such-option"])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.endswith(f" (see python -m {command} --help)\n")
    assert error.count("\n") == 1, error                          # no usage block


def test_run_cli_returns_what_build_returns_and_stops_in_one_line(capsys):
    parser = argparse.ArgumentParser(prog="python -m example")
    parser.add_argument("--n", type=int, default=1)
    assert layer.run_cli(parser, lambda args: {"n": args.n}, ["--n", "3"]) == {"n": 3}

    def interrupted(args):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit) as stop:
        layer.run_cli(parser, interrupted, [])
    assert stop.value.code == 130 and capsys.readouterr().err == "stopped (SIGINT)\n"

    def bad(args):
        layer.fail("Example", "n", args.n, "an integer >= 1")
    with pytest.raises(SystemExit) as stop:
        layer.run_cli(parser, bad, ["--n", "0"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: Example: n must be an integer >= 1; got n=0\n"
