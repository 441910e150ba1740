"""ListOps Tree-LSTM cost: training and evaluation examples per second at the paper's and the
book's configurations, the reference O(L^2) evaluation against the O(L) greedy path, and the
protocol variants that change the cost most (characters or tokens, random or bucketed batches,
hidden size).

    .venv/bin/python benchmarks/listops.py [--batches 3] [--threads 1] [--device auto] [--quick]

Times are wall-clock; the training line also gives the process's CPU time per batch, which with
one thread is what a batch costs even while other jobs share the machine. Batches are drawn from the official test split's length distribution (the authors' training file
came from the same generator run; ours is shorter by design at the study scale), after the
< 100-token filter. Training: full steps (forward, backward, clipping, RAdam) on ``--batches``
batches, random or bucketed as the variant says; the estimate per epoch assumes the paper's
89,000 training lines, 86.9 % of them kept by the filter. Evaluation: the reference encoder and
the greedy reuse encoder on the same length-sorted batches of 128 (they give equal results, see
tests/test_listops_model.py).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from reinmax.data import listops as data
from reinmax.experiments.listops import ListOpsConfig, build_model, pad, training_batches

VARIANTS = [
    # label, preset, changes
    ("paper (chars, H=300, random batches of 16)", "paper", {}),
    ("paper, tokens", "paper", {"unit": "token"}),
    ("paper, tokens, bucketed", "paper", {"unit": "token", "bucketed": True}),
    ("paper, tokens, bucketed, H=64", "paper", {"unit": "token", "bucketed": True,
                                                "word_dim": 64, "hidden_dim": 64, "clf_hidden_dim": 64}),
    ("study (tokens, H=32, bucketed batches of 32)", "study", {}),
    ("book (tokens, H=32, bucketed batches of 32)", "book", {}),
]
PAPER_TRAIN_KEPT = round(89000 * 0.869)


def measure(label, preset, changes, batches, device, eval_lines, show=print):
    config = ListOpsConfig.preset(preset, device=device, **changes)
    torch.manual_seed(0)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    split = data.load_split("test", config.unit)
    model = build_model(config, "ReinMax", len(split.vocab)).to(dev)
    optimizer = torch.optim.RAdam(model.parameters(), lr=1e-3)
    lengths = [len(x) for x in split.ids]
    order = training_batches(lengths, config.batch_size, config.bucketed,
                             torch.Generator().manual_seed(0))[:batches]
    model.train()
    examples, began, cpu_began = 0, time.perf_counter(), time.process_time()
    for rows in order:
        ids, lens = pad([split.ids[i] for i in rows], dev)
        loss = F.cross_entropy(model(ids, lens), split.labels[rows].to(dev))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        examples += len(rows)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - began
    # CPU seconds of this process: with one thread, what the step costs when the machine is shared
    train_cpu_s = time.process_time() - cpu_began
    train_rate = examples / train_s
    model.eval()
    sorted_rows = sorted(range(len(split)), key=lambda i: lengths[i])
    # evenly spaced lines over the sorted order: every length range is represented
    step = max(1, len(sorted_rows) // eval_lines)
    chosen = sorted_rows[::step][:eval_lines]
    rates = {}
    for reuse in (False, True):
        began = time.perf_counter()
        with torch.no_grad():
            for start in range(0, len(chosen), 128):
                rows = chosen[start:start + 128]
                ids, lens = pad([split.ids[i] for i in rows], dev)
                model(ids, lens, reuse=reuse)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        rates["reuse" if reuse else "reference"] = len(chosen) / (time.perf_counter() - began)
    epoch_h = PAPER_TRAIN_KEPT / train_rate / 3600 if preset == "paper" else None
    row = {"label": label, "preset": preset, "changes": changes, "train_batches": len(order),
           "train_examples_per_s": train_rate, "train_s_per_batch": train_s / len(order),
           "train_cpu_s_per_batch": train_cpu_s / len(order),
           "eval_examples_per_s_reference": rates["reference"],
           "eval_examples_per_s_reuse": rates["reuse"], "eval_lines": len(chosen),
           "paper_epoch_hours_estimate": epoch_h}
    show(f"{label:48s} train {train_rate:8.1f} ex/s ({1e3 * train_s / len(order):8.0f} ms/batch wall, "
         f"{1e3 * train_cpu_s / len(order):8.0f} ms CPU)"
         f"  eval reference {rates['reference']:8.1f} ex/s, reuse {rates['reuse']:8.1f} ex/s"
         f" ({rates['reuse'] / rates['reference']:.1f}x)"
         + (f"  -> {epoch_h:.1f} h per epoch of {PAPER_TRAIN_KEPT:,} lines, "
            f"{20 * epoch_h * 25 / 24:.0f} days for Table 1 (20 epochs x 25 runs)" if epoch_h else ""),
         flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="training batches timed per variant")
    parser.add_argument("--eval-lines", type=int, default=512, help="test lines evaluated per variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true",
                        help="the book and study variants only, one batch, 128 lines (a smoke test)")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.eval_lines < 1 or args.threads < 1:
        parser.error("--batches, --eval-lines and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    variants = [v for v in VARIANTS if v[1] in ("study", "book")] if args.quick else VARIANTS
    batches, lines = (1, 128) if args.quick else (args.batches, args.eval_lines)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}")
    rows = [measure(label, preset, changes, batches, args.device, lines)
            for label, preset, changes in variants]
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"threads": args.threads, "torch": torch.__version__, "rows": rows}, out, indent=1)
    return rows


if __name__ == "__main__":
    main()
