"""Table 5's setting (64 categories x 32 variables, batch 200): config, hyperparameters, the RLOO
training loss, resume and errors."""
import pytest
import torch

from reinmax.experiments import vae_64x32 as V
from reinmax.experiments.vae.config import TABLE8
from reinmax.models.vae import CategoricalVAE, seed_generators

torch.set_num_threads(1)


def test_setting_and_hyperparameters():
    assert (V.CATEGORIES, V.LATENTS) == (64, 32)
    config = V.VAE64x32Config(methods=["ReinMax", "RLOO", "GR-MCK"])
    assert config.batch_size == 200
    assert tuple(config.hyperparameters("ReinMax").values()) == TABLE8["64x8"]["ReinMax"]
    assert config.hyperparameters("RLOO") == {"optimizer": "Adam", "lr": 1e-3, "tau": None}
    assert config.method_options["GR-MCK"] == {"K": 1000}
    assert V.VAE64x32Config.at_scale("paper").steps == 500000
    assert "DisARM-Tree" in V.METHODS and V.PAPER_ONLY == ()
    assert config.hyperparameters("RLOO") == V.VAE64x32Config().hyperparameters("DisARM-Tree")


@pytest.mark.parametrize("changes,field", [
    (dict(methods=["DisARM"]), "methods"), (dict(rloo_samples=1), "rloo_samples"),
    (dict(steps=0), "steps"), (dict(overrides={"ST": {"beta": 1}}), "overrides"),
    (dict(method_options={"GR-MCK": {"K": 0}}), "method_options"),
])
def test_clear_errors(changes, field):
    with pytest.raises(ValueError, match=field):
        V.VAE64x32Config(**changes)


def test_leaky_relu_slope_and_default():
    x = torch.rand(1, 3, 784)
    relu = CategoricalVAE(4, 2, [0])
    leaky = CategoricalVAE(4, 2, [0], negative_slope=0.2)
    assert relu.negative_slope == 0.0 and leaky.negative_slope == 0.2
    h = torch.tensor([-1.0, 2.0])
    assert torch.equal(leaky._activation(h), torch.tensor([-0.2, 2.0]))
    assert not torch.allclose(relu.encode(x), leaky.encode(x))    # same weights, other activation
    with pytest.raises(ValueError, match="negative_slope"):
        CategoricalVAE(4, 2, [0], negative_slope=1.5)


def test_rloo_loss_gradient_is_rloo_for_the_encoder():
    """The encoder's output gradient equals RLOO's estimate on f = the single-sample -ELBO with the
    logits detached in log q (recomputed here from the same draws)."""
    model = CategoricalVAE(3, 2, [0])
    x = torch.rand(1, 4, 784)
    captured = {}
    encode = model.encode

    def spy(inputs, *args):
        logits = encode(inputs, *args)
        logits.retain_grad()
        captured["logits"] = logits
        return logits

    model.encode = spy
    gens = seed_generators([0], "noise")
    state = gens[0].get_state()
    loss = V.training.rloo_neg_elbo(model, x, 2, gens)
    loss.sum().backward()
    logits = captured["logits"][0]
    gens[0].set_state(state)
    import reinmax
    import math
    theta = logits.detach().requires_grad_(True)
    log_q_all = torch.log_softmax(theta.detach(), -1)
    f = lambda c: (model.reconstruction(x[0], c, 0) + (c * log_q_all).sum((-2, -1))
                   + 2 * math.log(3))
    surrogate, _ = reinmax.rloo(theta, f, num_samples=2, generator=gens[0], batch_dims=1)
    expected, = torch.autograd.grad(surrogate.mean(), theta)
    assert torch.allclose(captured["logits"].grad[0], expected, atol=1e-6)


def test_tiny_run_resumes_and_learns(tmp_path):
    base = dict(methods=["RLOO", "DisARM-Tree", "ReinMax"], seeds=[0, 1], steps=8, eval_every=4,
                train_subset=800, test_subset=200, device="cpu")
    whole = V.run(V.VAE64x32Config(**base, out_dir=str(tmp_path / "a")), progress=False)

    class Stop(Exception):
        pass

    def stop(method, history):
        raise Stop

    config = V.VAE64x32Config(**base, out_dir=str(tmp_path / "b"))
    with pytest.raises(Stop):
        V.run(config, progress=False, on_eval=stop)
    resumed = V.run(config, progress=False)
    for a, b in zip(whole["runs"], resumed["runs"]):
        assert a["history"]["train_neg_elbo"] == b["history"]["train_neg_elbo"]
        assert a["history"]["test_neg_elbo"] == b["history"]["test_neg_elbo"]
    for record in whole["runs"][:2]:                  # the score methods: every seed learns
        test = record["history"]["test_neg_elbo"]
        assert all(later < first for later, first in zip(test[-1], test[0])), record["method"]
    table = V.final_table(whole)
    assert set(table) == {"RLOO", "DisARM-Tree", "ReinMax"} and table["RLOO"]["n"] == 2
    names = sorted(p.name for p in (tmp_path / "a").glob("*.json"))
    assert "64x32_DisARM-Tree.json" in names and "64x32_ReinMax.json" in names


def test_radam_rectification_is_torchs_step_over_adams():
    # A constant gradient gives Adam a step of exactly lr per update (m_hat / sqrt(v_hat) = 1,
    # eps aside), so RAdam's step over Adam's is its rectification factor at every update.
    from reinmax.experiments.vae_64x32 import mean_rectification, radam_rectification
    ratios = []
    pa = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    pr = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([pa], lr=1e-3, eps=1e-16)
    radam = torch.optim.RAdam([pr], lr=1e-3, eps=1e-16)
    for t in range(1, 701):
        before_a, before_r = pa.detach().clone(), pr.detach().clone()
        for p, opt in ((pa, adam), (pr, radam)):
            p.grad = torch.ones_like(p)
            opt.step()
        ratios.append(float((pr.detach() - before_r) / (pa.detach() - before_a)))
        if t > 5:        # before that RAdam's momentum step is lr * m_hat, here also lr
            assert abs(ratios[-1] - radam_rectification(t)) < 1e-9, t
    assert radam_rectification(5) == 0.0 and 0.5 < radam_rectification(600) < 0.55
    assert 0.2 < mean_rectification(600) < 0.4 < radam_rectification(10 ** 5)
    with pytest.raises(ValueError, match="t"):
        radam_rectification(0)
    with pytest.raises(ValueError, match="beta2"):
        radam_rectification(3, beta2=1.0)


def test_ranking_at_reads_each_evaluation_point_and_ranks_by_mean():
    from reinmax.experiments.vae_64x32 import ranking_at, values_at

    def record(method, first, last):
        return {"method": method, "history": {"steps": [10, 20], "train_neg_elbo": [first, last],
                                              "test_neg_elbo": [first, last]}}
    records = [record("A", [5.0, 7.0], [3.0, 3.0]), record("B", [4.0, 4.0], [3.5, 4.5])]
    table = ranking_at(records, [10, 20])
    assert [row["method"] for row in table[10]] == ["B", "A"]        # the ranking moves
    assert [row["method"] for row in table[20]] == ["A", "B"]
    assert table[10][1]["std"] == pytest.approx(2 ** 0.5)             # ddof = 1
    assert table[20][0]["rank"] == 1 and table[20][1]["mean"] == 4.0
    with pytest.raises(ValueError, match="step must be an evaluation point.*it has \\[10, 20\\]"):
        values_at(records[0], 15)
