"""The 2x200 Bernoulli VAE (Table 6): the model's terms exactly, the two protocols' knobs, the
score-family training loss, resume, clear errors, and a tiny run that learns."""
import itertools
import math

import pytest
import torch

from reinmax.experiments import bernoulli_vae as bv, layer
from reinmax.experiments.bernoulli_vae import estimators

torch.set_num_threads(1)


def _model(latents=3, learn_prior=False, seed=0):
    return bv.BernoulliVAE(torch.Generator().manual_seed(seed), latents=latents,
                           learn_prior=learn_prior).double()


def _codes(D):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=torch.float64)


def test_architecture_glorot_and_zero_biases():
    model = bv.BernoulliVAE(torch.Generator().manual_seed(0))
    shapes = [tuple(l.weight.shape) for l in list(model.encoder) + list(model.decoder)]
    assert shapes == [(200, 784), (200, 200), (200, 200), (200, 200), (200, 200), (784, 200)]
    for layer in list(model.encoder) + list(model.decoder):
        bound = math.sqrt(6 / sum(layer.weight.shape))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.all(layer.bias == 0)
    assert "prior_logits" in dict(model.named_buffers())           # fixed prior: not a parameter
    learned = bv.BernoulliVAE(torch.Generator().manual_seed(0), learn_prior=True)
    assert "prior_logits" in dict(learned.named_parameters())
    x = torch.rand(5, 784)
    assert model.encode(x).shape == (5, 200)
    assert model.log_likelihood(x, torch.zeros(3, 5, 200)).shape == (3, 5)


def test_kl_and_elbo_terms_against_enumeration():
    """The closed-form KL equals E_q[log q - log p] summed over all 2^D codes (float64), with a
    learned (non-uniform) prior; and E_q[f] = E_q[-log p(x|b)] + KL."""
    model = _model(learn_prior=True)
    with torch.no_grad():
        model.prior_logits.copy_(torch.tensor([0.3, -1.2, 2.0]))
    x = torch.rand(2, 784, dtype=torch.float64).round()
    logits = model.encode(x)                                       # (2, 3)
    codes = _codes(3)[:, None, :].expand(8, 2, 3)
    log_q = model.log_bernoulli(logits, codes)                     # (8, 2)
    q = log_q.exp()
    assert torch.allclose(q.sum(0), torch.ones(2, dtype=torch.float64), atol=1e-12)
    kl = (q * (log_q - model.log_bernoulli(model.prior_logits, codes))).sum(0)
    assert torch.allclose(model.kl(logits), kl, atol=1e-10)
    f = model.neg_elbo_terms(x, logits, codes)
    expected = (q * -model.log_likelihood(x, codes)).sum(0) + kl
    assert torch.allclose((q * f).sum(0), expected, atol=1e-9)


def test_iwae_bound():
    f = torch.tensor([[100.0, 90.0], [102.0, 95.0], [98.0, 93.0]])
    bound = bv.iwae_bound(f)
    assert torch.allclose(bv.iwae_bound(f[:1]), f[0].double())
    assert torch.all(bound <= f.double().mean(0))                  # Jensen: tighter than the mean
    assert torch.allclose(bound, -(torch.logsumexp(-f.double(), 0) - math.log(3)))


def test_score_loss_pushes_the_estimate_through_the_encoder():
    """The encoder's output gradient is the estimate over the batch size (the direct dependence
    of f on the logits dropped); the decoder gets the gradient of f's mean."""
    model = bv.BernoulliVAE(torch.Generator().manual_seed(0))
    x = (torch.rand(4, 784) < 0.3).float()
    est = estimators.build_score("RLOO", 2)
    captured = {}
    encode = model.encode

    def spy(inputs):
        logits = encode(inputs)
        logits.retain_grad()
        captured["logits"] = logits
        return logits

    model.encode = spy
    loss, value, _ = estimators.score_loss(model, est, x, torch.Generator().manual_seed(1))
    loss.backward()
    assert torch.isfinite(value)
    logits = captured["logits"]
    frozen = logits.detach()
    out = est(frozen, lambda b: model.neg_elbo_terms(x, frozen, b),
              generator=torch.Generator().manual_seed(1))
    assert torch.allclose(logits.grad, out.grad / 4, atol=1e-6)
    assert model.decoder[0].weight.grad is not None


def test_protocol_knobs():
    base = bv.BernoulliVAEConfig(methods=["ReinMax", "RLOO"])
    assert base.hyperparameters("ReinMax", 2) == {"optimizer": "Adam", "lr": 1e-3, "tau": 1.1}
    assert base.hyperparameters("RLOO", 2)["tau"] is None
    fashion = bv.BernoulliVAEConfig(dataset="fashion-mnist")
    assert fashion.hyperparameters("ReinMax", 2)["lr"] == 3e-4
    script = bv.BernoulliVAEConfig(protocol="reinmax-script", dataset="omniglot")
    assert script.hyperparameters("ReinMax", 2) == {"optimizer": "RAdam", "lr": 3e-4, "tau": 1.1}
    assert script.hyperparameters("ReinMax", 3) == {"optimizer": "RAdam", "lr": 5e-4, "tau": 1.2}
    assert bv.PROTOCOLS["baselines"]["binarization"] == "dynamic"
    assert bv.PROTOCOLS["reinmax-script"]["prior"] == "learned"
    over = bv.BernoulliVAEConfig(overrides={"reinmax": {"tau": 1.3}})
    assert over.hyperparameters("ReinMax", 2)["tau"] == 1.3
    paper = bv.BernoulliVAEConfig.at_scale("paper")
    assert paper.steps == 10 ** 6 and paper.batch_size == 100 and paper.seeds == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("changes,field", [
    (dict(dataset="cifar"), "dataset"), (dict(protocol="theirs"), "protocol"),
    (dict(methods=["Nope"]), "methods"), (dict(evaluations=[0]), "evaluations"),
    (dict(methods=["RLOO"], evaluations=[1]), "evaluations"), (dict(seeds="0,1"), "seeds"),
    (dict(methods=["RODEO"], evaluations=[4]), "RODEO"),
    (dict(methods=["DisARM"], evaluations=[3]), "DisARM"),
    (dict(methods=["RELAX"], evaluations=[2]), "RELAX"),
    (dict(steps=0), "steps"), (dict(train_subset=60000), "train_subset"),
    (dict(overrides={"ReinMax": {"momentum": 0.9}}), "overrides"),
])
def test_clear_errors(changes, field):
    with pytest.raises(ValueError, match=field):
        bv.BernoulliVAEConfig(**changes)


def test_binarization_dynamic_and_static():
    images = torch.full((3, 784), 0.5)
    g = torch.Generator().manual_seed(0)
    first, second = bv.binarize(images, g), bv.binarize(images, g)
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    assert torch.equal(bv.binarize(images, torch.Generator().manual_seed(0)), first)


def _tiny(tmp_path=None, **changes):
    values = dict(methods=["ReinMax"], seeds=[0], steps=30, eval_every=10, train_subset=1000,
                  eval_subset=300, device="cpu",
                  out_dir=str(tmp_path) if tmp_path is not None else None)
    values.update(changes)
    return bv.BernoulliVAEConfig(**values)


@pytest.mark.parametrize("protocol,method", [("baselines", "ReinMax"), ("reinmax-script", "ST"),
                                             ("baselines", "RLOO")])
def test_tiny_run_learns(protocol, method):
    config = _tiny(protocol=protocol, methods=[method], steps=60, eval_every=20,
                   overrides={method: {"lr": 3e-3}})
    record = bv.run(config, progress=False)["runs"][0]
    train = record["history"]["train_neg_elbo"]
    assert len(train) == 3 and train[-1] < train[1] < train[0] - 3
    assert record["final"]["test_neg_elbo"] == record["history"]["test_neg_elbo"][-1]
    table = bv.final_table({"runs": [record]})
    assert table[(2, method)]["n"] == 1


def test_resume_gives_the_uninterrupted_run(tmp_path):
    whole = bv.run(_tiny(tmp_path / "a", methods=["RLOO"]), progress=False)["runs"][0]

    class Stop(Exception):
        pass

    def stop_after_first(stem, history):
        if len(history["steps"]) == 1:
            raise Stop

    config = _tiny(tmp_path / "b", methods=["RLOO"])
    with pytest.raises(Stop):
        bv.run(config, progress=False, on_eval=stop_after_first)
    assert list((tmp_path / "b").glob("*.ckpt"))
    resumed = bv.run(config, progress=False)["runs"][0]
    assert resumed["history"]["train_neg_elbo"] == whole["history"]["train_neg_elbo"]
    assert resumed["history"]["test_neg_elbo"] == whole["history"]["test_neg_elbo"]
    assert not list((tmp_path / "b").glob("*.ckpt"))
    again = bv.run(config, progress=False)["runs"][0]              # finished: read back
    assert again["fingerprint"] == resumed["fingerprint"]
    with pytest.raises(ValueError, match="other settings"):
        bv.run(_tiny(tmp_path / "b", methods=["RLOO"], steps=40), progress=False)


def test_unavailable_data_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for dataset in ("fashion-mnist", "omniglot"):
        message = bv.data_available(dataset, root=str(tmp_path))
        assert message is not None and dataset in message and "offline" in message


@pytest.mark.parametrize("method,K", [("REINFORCE", 2), ("RLOO", 3), ("DisARM", 2), ("ARMS", 3),
                                      ("DoubleCV", 2), ("RODEO", 2), ("RODEO", 3), ("RELAX", 3)])
def test_every_score_method_trains_and_learns_its_controls(method, K):
    """A few steps of each score estimator of the contract: finite metrics, and the learned
    control parts (Double CV, RODEO, RELAX) move away from their initial values."""
    config = _tiny(methods=[method], evaluations=[K], steps=6, eval_every=3, eval_subset=100,
                   train_subset=300)
    before = estimators.build_score(method, K)
    seen = {}
    original = estimators.build_score

    def keep(*args, **kwargs):
        seen["est"] = original(*args, **kwargs)
        return seen["est"]

    estimators.build_score = keep
    try:
        record = bv.run(config, progress=False)["runs"][0]
    finally:
        estimators.build_score = original
    assert all(math.isfinite(v) for v in record["history"]["train_neg_elbo"])
    assert record["estimator_module"] == "reinmax.estimators.bernoulli_score"
    learned = [p for p in seen["est"].parameters() if p.requires_grad]
    if method in ("DoubleCV", "RODEO", "RELAX"):
        # The scalar coefficients start at fixed values (0; RELAX: log 0.1 and 1), so a change
        # shows the variance objective trained them.
        scalars = {n: p for n, p in seen["est"].named_parameters() if p.dim() == 0}
        initial = dict(before.named_parameters())
        assert scalars and any(not torch.equal(p, initial[n]) for n, p in scalars.items())
    else:
        assert not learned


# ------------------------------------------------------------- ReinMax's grid under `baselines`
def _grid_record(lr, tau, value, seed=0, method="ReinMax", protocol="baselines", K=2, steps=100):
    return {"method": method, "protocol": protocol, "K": K, "seed": seed, "steps": steps,
            "hyperparameters": {"optimizer": "Adam", "lr": lr, "tau": tau},
            "final": {"train_neg_elbo": value, "test_neg_elbo": 500.0 - value}}


def test_grid_selects_the_lowest_train_neg_elbo_of_seed_0_only():
    from reinmax.experiments.bernoulli_vae import grid
    records = [_grid_record(1e-3, 1.1, 113.6), _grid_record(1e-3, 1.5, 112.9),
               _grid_record(5e-4, 1.3, 115.0),
               _grid_record(5e-4, 1.1, 100.0, seed=1),                 # another seed
               _grid_record(1e-3, 1.3, 90.0, method="RLOO"),           # another method
               _grid_record(1e-3, 1.3, 90.0, protocol="reinmax-script"),
               _grid_record(1e-3, 1.3, 90.0, K=3)]
    chosen = grid.select(records)
    assert chosen["chosen"] == (1e-3, 1.5)
    assert [(c["lr"], c["tau"]) for c in chosen["cells"]] == [(1e-3, 1.5), (1e-3, 1.1), (5e-4, 1.3)]
    # by the test bound the order reverses: the metric is what decides
    assert grid.select(records, metric="test_neg_elbo")["chosen"] == (5e-4, 1.3)
    assert grid.select(records, seed=1)["chosen"] == (5e-4, 1.1)
    assert grid.cells() == [(1e-3, 1.1), (1e-3, 1.3), (1e-3, 1.5), (5e-4, 1.1), (5e-4, 1.3),
                            (5e-4, 1.5)]
    assert grid.cell_dir("g", 5e-4, 1.5).name == "lr0.0005_tau1.5"


@pytest.mark.parametrize("records,match", [
    ([], "records"),
    ([_grid_record(1e-3, 1.1, 1.0), _grid_record(1e-3, 1.5, 2.0, steps=50)], "one length"),
    ([_grid_record(1e-3, 1.1, 1.0), _grid_record(1e-3, 1.1, 2.0)], "two different runs"),
])
def test_grid_selection_refuses_what_it_cannot_compare(records, match):
    from reinmax.experiments.bernoulli_vae import grid
    with pytest.raises(ValueError, match=match):
        grid.select(records)
    with pytest.raises(ValueError, match="metric"):
        grid.select([_grid_record(1e-3, 1.1, 1.0)], metric="accuracy")


def test_grid_runs_cells_then_the_chosen_cells_other_seeds(tmp_path):
    from reinmax.experiments.bernoulli_vae import grid
    chosen = grid.run_grid(tmp_path, lrs=[3e-3, 1e-5], taus=[1.1], final_seeds=[0, 1],
                           scale="smoke", progress=False, steps=30, eval_every=10,
                           train_subset=1000, eval_subset=300, device="cpu")
    assert chosen["chosen"] == (3e-3, 1.1)          # 1e-5 barely moves in 30 updates
    fast, slow = grid.cell_dir(tmp_path, 3e-3, 1.1), grid.cell_dir(tmp_path, 1e-5, 1.1)
    assert sorted(p.name for p in fast.glob("*_seed*.json")) == [
        "mnist_baselines_K2_ReinMax_seed0.json", "mnist_baselines_K2_ReinMax_seed1.json"]
    assert [p.name for p in slow.glob("*_seed*.json")] == ["mnist_baselines_K2_ReinMax_seed0.json"]
    again = grid.select(grid.read_records(tmp_path))             # the records alone give it back
    assert again["chosen"] == chosen["chosen"] and set(chosen["final_seeds"]) == {0, 1}
    assert [r["seed"] for r in grid.runs_of(grid.read_records(tmp_path), 3e-3, 1.1)] == [0, 1]
    assert [r["seed"] for r in grid.runs_of(grid.read_records(tmp_path), 1e-5, 1.1)] == [0]
    saved = layer.read_json(tmp_path / "selection.json")
    assert tuple(saved["chosen"]) == (3e-3, 1.1)
    record = layer.read_json(fast / "mnist_baselines_K2_ReinMax_seed1.json")
    assert record["hyperparameters"] == {"optimizer": "Adam", "lr": 3e-3, "tau": 1.1}


def test_cli_lr_and_tau_reach_the_run(tmp_path):
    from reinmax.experiments.bernoulli_vae.cli import main as _main
    results = _main(["--out-dir", str(tmp_path), "--scale", "smoke", "--methods", "ReinMax",
                     "RLOO", "--steps", "2", "--eval-every", "2", "--eval-subset", "50",
                     "--lr", "2e-3", "--tau", "1.4", "--device", "cpu"])
    hp = {r["method"]: r["hyperparameters"] for r in results["runs"]}
    assert hp["ReinMax"] == {"optimizer": "Adam", "lr": 2e-3, "tau": 1.4}
    assert hp["RLOO"] == {"optimizer": "Adam", "lr": 2e-3, "tau": None}
