"""The ListOps experiment, training (Section 6.2, Table 1, Figure 3).

``run(ListOpsConfig(...)) -> record``: every method and seed trains one Gumbel Tree-LSTM
(``reinmax.models.treelstm``) on the generated training split with the method's Table 8 learning
rate (times ``lr_scale``) and temperature, RAdam, gradient-norm clipping 5, and the plateau
scheduler on validation accuracy (factor 0.5, patience 4 validations, two validations per epoch),
as the authors' code does. Recorded per validation: epoch, validation loss and accuracy, learning
rate and the mean training loss since the previous validation (Figure 3); after the last epoch,
the last weights (the reference evaluates its last checkpoint) on the validation and test splits
(Table 1), and in token mode the induced trees' agreement with the expressions' operator spans.

With ``out_dir`` set, each run checkpoints after every epoch and resumes there; a finished run is
``<out_dir>/<method>_seed<seed>.json`` (atomic, with provenance) and is not trained again by a
later call with the same settings; the whole record is ``<out_dir>/record.json``.
"""
import dataclasses
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from reinmax import statistics
from reinmax.data import listops as data
from reinmax.experiments import layer, progress_bar
from reinmax.models.treelstm import TreeLSTMClassifier, branching_spans, merge_spans
from .config import ListOpsConfig

EXPERIMENT = "listops"


# ------------------------------------------------------------------------ data
def load_data(config: ListOpsConfig) -> Dict[str, Any]:
    """The generated training split and the reference validation and official test splits,
    preprocessed, filtered (< ``max_tokens`` tokens) and encoded in ``config.unit``."""
    lines, path = data.training_split(config.train_size, config.train_seed,
                                      max_tokens=config.train_max_tokens,
                                      cache_dir=config.out_dir, root=config.data_root)
    splits = {"train": data.encode(lines, config.unit, config.max_tokens), "train_file": str(path)}
    for name in ("valid", "test"):
        split = data.encode(data.read_tsv(data.listops_file(name, root=config.data_root)),
                            config.unit, config.max_tokens)
        if config.eval_subset is not None:
            n = config.eval_subset
            split = data.ListOpsSplit(split.texts[:n], split.ids[:n], split.labels[:n],
                                      split.vocab, split.unit)
        splits[name] = split
    return splits


def pad(ids: Sequence[Sequence[int]], device=None):
    """``(ids (B, L) padded with 0, lengths (B,))``."""
    lengths = torch.tensor([len(x) for x in ids])
    out = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for row, x in enumerate(ids):
        out[row, :len(x)] = torch.tensor(x)
    return out.to(device), lengths.to(device)


def training_batches(lengths: Sequence[int], batch_size: int, bucketed: bool,
                     generator: torch.Generator) -> List[List[int]]:
    """One epoch's batches: a random permutation cut in groups (the reference), or, bucketed,
    pools of 100 batches sorted by length, cut, and the batches shuffled."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if bucketed:
        pool = 100 * batch_size
        order = [i for start in range(0, len(order), pool)
                 for i in sorted(order[start:start + pool], key=lambda j: lengths[j])]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if bucketed:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


@torch.no_grad()
def evaluate(model: TreeLSTMClassifier, split: data.ListOpsSplit, batch_size: int = 128,
             device=None, reuse: bool = True) -> Dict[str, float]:
    """Mean cross-entropy and accuracy (over examples) with greedy parsing, in batches sorted by
    length (as the reference's evaluation iterator)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(split)), key=lambda i: len(split.ids[i]))
    loss = correct = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, lengths = pad([split.ids[i] for i in rows], device)
        labels = split.labels[rows].to(ids.device)
        logits = model(ids, lengths, reuse=reuse)
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += float((logits.argmax(1) == labels).sum())
    model.train(was_training)
    return {"loss": loss / max(len(split), 1), "accuracy": correct / max(len(split), 1)}


@torch.no_grad()
def tree_agreement(model: TreeLSTMClassifier, split: data.ListOpsSplit, keep: int = 20,
                   device=None) -> Dict[str, Any]:
    """Token mode only. Per operator depth: how many expressions' every ``[ OP ... ]`` span is a
    constituent of the greedy induced tree, and how many induced trees are exactly the
    left-branching tree (``left``) or exactly the right-branching one (``right``; records made
    before it was counted lack the key); the first ``keep`` expressions' merges (to draw them)."""
    if split.unit != "token":
        raise ValueError("tree_agreement: the split must be encoded in tokens (unit='token'); "
                         f"got unit={split.unit!r}")
    was_training = model.training
    model.eval()
    by_depth: Dict[int, Dict[str, int]] = defaultdict(lambda: {"n": 0, "spans": 0, "left": 0, "right": 0})
    examples = []
    for start in range(0, len(split), 128):
        rows = list(range(start, min(start + 128, len(split))))
        ids, lengths = pad([split.ids[i] for i in rows], device)
        _, merges = model.encode_greedy(ids, lengths)
        for row, i in enumerate(rows):
            n = int(lengths[row])
            spans = set(merge_spans(merges[row, :max(n - 1, 0)].tolist(), n))
            gold = data.operator_spans(split.texts[i])
            entry = by_depth[data.depth(split.texts[i])]
            entry["n"] += 1
            entry["spans"] += all(s in spans for s in gold)
            entry["left"] += spans == branching_spans(n, "left")
            entry["right"] += spans == branching_spans(n, "right")
            if len(examples) < keep:
                examples.append({"text": split.texts[i], "label": int(split.labels[i]),
                                 "merges": merges[row, :max(n - 1, 0)].tolist()})
    model.train(was_training)
    total = {k: sum(e[k] for e in by_depth.values()) for k in ("n", "spans", "left", "right")}
    return {"by_depth": {str(d): by_depth[d] for d in sorted(by_depth)}, "total": total,
            "examples": examples}


# ------------------------------------------------------------------------ one run
def _settings(config: ListOpsConfig, method: str, seed: int, train_file: str) -> Dict[str, Any]:
    """Everything that decides one run's numbers (not the device, not the output folder)."""
    skip = {"methods", "seeds", "device", "out_dir", "data_root", "overrides", "method_options"}
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in skip}
    return dict(fields, method=method, seed=seed, hyperparameters=config.hyperparameters(method),
                method_options=config.method_options.get(method, {}),
                generator_version=data.GENERATOR_VERSION)


def _stem(method: str, seed: int) -> str:
    return f"{method.replace('/', '-')}_seed{seed}"


def build_model(config: ListOpsConfig, method: str, vocab_size: int) -> TreeLSTMClassifier:
    hp = config.hyperparameters(method)
    return TreeLSTMClassifier(vocab_size, data.NUM_CLASSES, word_dim=config.word_dim,
                              hidden_dim=config.hidden_dim, clf_hidden_dim=config.clf_hidden_dim,
                              dropout=config.dropout, tau=hp["tau"],
                              estimator=layer.estimator(method, config.method_options.get(method)))


def train_run(config: ListOpsConfig, method: str, seed: int, splits: Dict[str, Any],
              device: torch.device, show: bool = True) -> Dict[str, Any]:
    """Train one method with one seed (resuming from its checkpoint) and return its run."""
    settings = _settings(config, method, seed, splits["train_file"])
    fp = layer.fingerprint(settings)
    out = Path(config.out_dir) if config.out_dir else None
    if out is not None:
        found = layer.finished_record(out / f"{_stem(method, seed)}.json", fp, config.device,
                                      fields=settings, stored_as="settings")
        if found is not None:
            return found["run"]
    hp = config.hyperparameters(method)
    torch.manual_seed(seed)
    model = build_model(config, method, len(splits["train"].vocab)).to(device)
    optimizer = torch.optim.RAdam(model.parameters(), lr=hp["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                           patience=4)
    history: List[Dict[str, float]] = []
    start_epoch, trained_s = 0, 0.0
    checkpoint = out / f"{_stem(method, seed)}.pt" if out is not None else None
    if checkpoint is not None:
        state = layer.load_checkpoint(checkpoint, fp, device)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            history, start_epoch, trained_s = state["history"], state["epoch"], state["trained_s"]
    train = splits["train"]
    lengths = [len(x) for x in train.ids]
    bar = progress_bar(total=config.epochs, initial=start_epoch, desc=f"{method} seed {seed}",
                       leave=False, disable=not show)
    diverged = None
    for epoch in range(start_epoch, config.epochs):
        began = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        batches = training_batches(lengths, config.batch_size, config.bucketed, generator)
        checkpoints = {max(1, round(len(batches) * (v + 1) / config.validations_per_epoch)): v
                       for v in range(config.validations_per_epoch)}
        losses = []
        model.train()
        for number, rows in enumerate(batches, 1):
            ids, lens = pad([train.ids[i] for i in rows], device)
            loss = F.cross_entropy(model(ids, lens), train.labels[rows].to(device))
            optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            if not (math.isfinite(loss.item()) and math.isfinite(float(norm))):
                # A non-finite loss or gradient would turn every weight into NaN at this step
                # (the reference then crashes in its sampler): the run stops here, unstepped,
                # and is recorded as diverged, not dropped.
                diverged = {"epoch": epoch + number / len(batches), "loss": loss.item(),
                            "grad_norm": float(norm)}
                break
            optimizer.step()
            losses.append(loss.item())
            if number in checkpoints:
                valid = evaluate(model, splits["valid"], config.eval_batch_size, device)
                scheduler.step(valid["accuracy"])
                history.append({"epoch": epoch + number / len(batches),
                                "valid_loss": valid["loss"], "valid_accuracy": valid["accuracy"],
                                "train_loss": sum(losses) / len(losses),
                                "lr": optimizer.param_groups[0]["lr"]})
                losses = []
        trained_s += time.perf_counter() - began
        if diverged is not None:
            break
        if checkpoint is not None:
            layer.save_checkpoint(checkpoint, {
                "fingerprint": fp, "device_type": device.type, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1,
                "trained_s": trained_s})
        bar.update(1)
    bar.close()
    run = {"method": method, "seed": seed, "hyperparameters": hp, "history": history,
           "diverged": diverged, "train_examples": len(train), "train_s": trained_s}
    if diverged is None:
        final = {name: evaluate(model, splits[name], config.eval_batch_size, device)
                 for name in ("valid", "test")}
        run.update(valid_accuracy=final["valid"]["accuracy"], valid_loss=final["valid"]["loss"],
                   test_accuracy=final["test"]["accuracy"], test_loss=final["test"]["loss"],
                   train_examples_per_s=len(train) * config.epochs / max(trained_s, 1e-9),
                   trees=(tree_agreement(model, splits["valid"], config.trees, device)
                          if config.unit == "token" else None))
    else:
        # No final numbers: a diverged model has none that mean anything. Tables count it apart.
        run.update(valid_accuracy=None, valid_loss=None, test_accuracy=None, test_loss=None,
                   train_examples_per_s=None, trees=None)
    if out is not None:
        layer.write_json(out / f"{_stem(method, seed)}.json",
                         {"experiment": EXPERIMENT, "settings": settings, "fingerprint": fp,
                          "run": run, "provenance": layer.provenance(device)})
        checkpoint.unlink(missing_ok=True)
    return run


def run(config: ListOpsConfig, show: bool = True) -> Dict[str, Any]:
    """Train every method and seed of ``config``; the record (see the module docstring)."""
    began = time.perf_counter()
    device = layer.resolve_device(config.device)
    splits = load_data(config)
    runs = [train_run(config, method, seed, splits, device, show)
            for method in config.methods for seed in config.seeds]
    config_dict = dataclasses.asdict(config)
    record = layer.record(EXPERIMENT, config_dict, runs, time.perf_counter() - began,
                          layer.provenance(device),
                          fingerprint=layer.fingerprint({k: v for k, v in config_dict.items()
                                                         if k not in ("device", "out_dir", "data_root")}),
                          data={"train_file": Path(splits["train_file"]).name,
                                "sizes": {k: len(splits[k]) for k in ("train", "valid", "test")}})
    if config.out_dir:
        layer.write_json(Path(config.out_dir) / "record.json", record)
    return record


# ------------------------------------------------------------------------ readers
def final_table(record: Dict[str, Any]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """``{"valid"|"test": {method: summary}}`` of the final accuracies in percent (mean, sample
    std over seeds, n), Table 1's shape; runs that diverged are left out of the summary and
    counted in ``diverged``."""
    table: Dict[str, Dict[str, Any]] = {"valid": {}, "test": {}}
    methods = list(dict.fromkeys(r["method"] for r in record["runs"]))
    for split in table:
        for method in methods:
            runs = [r for r in record["runs"] if r["method"] == method]
            values = [100 * r[f"{split}_accuracy"] for r in runs if not r.get("diverged")]
            diverged = len(runs) - len(values)
            summary = (statistics.summary(values, ddof=1 if len(values) > 1 else 0) if values
                       else {"mean": float("nan"), "std": float("nan"), "n": 0})
            table[split][method] = dict(summary, values=values, diverged=diverged)
    return table


def curves(record: Dict[str, Any], key: str = "valid_accuracy") -> Dict[str, Dict[str, List[float]]]:
    """Figure 3: ``{method: {"epoch": [...], "mean": [...], "std": [...]}}`` over the seeds that
    did not diverge (a method whose every run diverged has no curve)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in record["runs"]):
        runs = [r["history"] for r in record["runs"]
                if r["method"] == method and not r.get("diverged")]
        if not runs:
            continue
        points = min(len(h) for h in runs)
        values = [[h[i][key] for h in runs] for i in range(points)]
        means = [sum(v) / len(v) for v in values]
        stds = [math.sqrt(sum((x - m) ** 2 for x in v) / max(len(v) - 1, 1))
                for v, m in zip(values, means)]
        out[method] = {"epoch": [runs[0][i]["epoch"] for i in range(points)], "mean": means,
                       "std": stds}
    return out


def read_record(folder) -> Dict[str, Any]:
    """The record of a run folder: ``record.json`` when the run has finished; otherwise one
    assembled from the finished runs' files (``"partial": True``, and ``config`` lists only the
    methods and seeds found), so that an unfinished background run can be read as it stands."""
    folder = Path(folder)
    if (folder / "record.json").is_file():
        return layer.read_json(folder / "record.json")
    files = sorted(p for p in folder.glob("*_seed*.json"))
    if not files:
        raise FileNotFoundError(f"{folder} holds neither record.json nor any finished run "
                                "(<method>_seed<seed>.json)")
    found = [layer.read_json(p) for p in files]
    order = {m: i for i, m in enumerate(ListOpsConfig.__dataclass_fields__["methods"].default)}
    found.sort(key=lambda f: (order.get(f["run"]["method"], 99), f["run"]["seed"]))
    settings = dict(found[0]["settings"])
    for key in ("method", "seed", "hyperparameters", "method_options", "generator_version"):
        settings.pop(key, None)
    runs = [f["run"] for f in found]
    config = dict(settings, methods=list(dict.fromkeys(r["method"] for r in runs)),
                  seeds=sorted({r["seed"] for r in runs}))
    return layer.record(EXPERIMENT, config, runs, sum(r["train_s"] for r in runs),
                        found[-1]["provenance"], partial=True)
