"""Polynomial programming: config checks, the batched trainer, resuming, and the two-category
fast paths (STGS, GST, GR-MCK quadrature) that make it affordable."""
import dataclasses
import math

import pytest
import torch

import reinmax
from reinmax import results
from reinmax import _binary
from reinmax.experiments import polynomial as P
import reinmax.experiments.polynomial.cli  # noqa: F401  (P.cli.main)

TINY = dict(p=2.0, L=6, batch_size=8, steps=5, epochs=4, seeds=[0, 1, 2])


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value, needle", [
    ("p", 0, "p must be a number in (0, inf)"), ("p", -1.5, "got p=-1.5"), ("p", math.inf, "p must be"),
    ("L", 0, "L must be an integer >= 1"), ("batch_size", 0, "batch_size must be"),
    ("batch_size", 2.5, "batch_size must be"), ("setting", "C", "setting must be 'A'"),
    ("methods", ["ReinMax", "Nope"], "'Nope' is not one"), ("methods", [], "non-empty"),
    ("taus", 0.0, "taus must be a number in (0, inf)"), ("taus", math.inf, "in (0, inf)"),
    ("taus", {"ST": -1.0}, "taus['ST'] must be a number in (0, inf)"),
    ("taus", {"Nope": 1.0}, "'Nope' is not one"), ("steps", 0, "steps must be"),
    ("epochs", 0, "epochs must be"), ("seeds", 0, "seeds must be a non-empty list"),
    ("seeds", [0, 0], "distinct"), ("seeds", [-1], "non-negative"),
    ("seeds", "[", "PolynomialConfig: seeds must be a non-empty list of distinct non-negative "
     "integers (from papermill pass lists with -y"),
    ("device", "tpu", "device must be one of"),
    ("method_options", {"GR-MCK": {"K": 0}}, "method_options['GR-MCK'] must be options that GR-MCK accepts"),
    ("method_options", {"GR-MCK": {"samples": 5}}, "method_options['GR-MCK'] must be"),
    ("method_options", {"RLOO": {"num_samples": 3}}, "['num_samples'] must be an integer >= 2 that divides batch_size=8"),
    ("method_options", {"Nope": {}}, "'Nope' is not one"),
])
def test_bad_config_names_parameter_value_and_what_is_allowed(field, value, needle):
    with pytest.raises(ValueError) as error:
        P.PolynomialConfig(**dict(TINY, **{field: value}))
    assert needle in str(error.value)
    assert field.split("[")[0] in str(error.value)


def test_config_accepts_every_registered_method_and_a_tau_dict():
    config = P.PolynomialConfig(**dict(TINY, methods=P.methods(), taus={"ST": 1.3}))
    assert config.tau("ST") == 1.3 and config.tau("STGS") == 1.0
    assert P.methods() == (list(reinmax.ESTIMATORS) + list(reinmax.SCORE_ESTIMATORS)
                           + reinmax.estimators.registry.names("bernoulli-score"))
    # Options mirror the registry and are merged over the experiment's defaults.
    assert config.method_options == {"GR-MCK": {"K": "quadrature"}}
    other = P.PolynomialConfig(**dict(TINY, method_options={"RLOO": {"num_samples": 4}}))
    assert other.method_options == {"GR-MCK": {"K": "quadrature"}, "RLOO": {"num_samples": 4}}


def test_seeds_0_to_n_keep_the_random_stream_they_had_as_a_count():
    """The key of seeds=[0, ..., n-1] is the one the experiment used when seeds was n (so the
    committed records are what these configs give); another list gets a stream of its own."""
    import zlib
    from reinmax.experiments.polynomial.training import _generator_seed
    config = P.PolynomialConfig(**dict(TINY, seeds=[0, 1, 2]))
    assert _generator_seed(config, "ST") == zlib.crc32(
        b"polynomial|ST|p=2.0|L=6|setting=A|seeds=3")
    assert _generator_seed(P.PolynomialConfig(**dict(TINY, seeds=[2, 0, 1])), "ST") != \
        _generator_seed(config, "ST")
    assert torch.equal(P.initial_theta([0, 1, 2], 6), P.initial_theta(3, 6))


# --------------------------------------------------------------------------- problem
def test_optimum_and_exact_loss():
    config = P.PolynomialConfig(**dict(TINY, p=3.0, setting="B"))
    c = P.target(config)
    assert torch.allclose(c, (torch.arange(6, dtype=torch.float64) + 0.5) / 6)
    # Near-one-hot theta that picks the nearer of 0, 1 for every coordinate reaches the optimum.
    nearer_one = (1 - c) < c
    theta = torch.stack([torch.where(nearer_one, 40.0, -40.0), torch.zeros(6, dtype=torch.float64)], -1)
    assert P.exact_loss(theta, c, 3.0).item() == pytest.approx(P.optimum(config), abs=1e-12)
    assert P.optimum(P.PolynomialConfig(**dict(TINY, p=1.5))) == pytest.approx(0.45 ** 1.5)


def test_exact_loss_matches_monte_carlo():
    torch.manual_seed(0)
    theta, c, p = torch.randn(5, 2, dtype=torch.float64), torch.rand(5, dtype=torch.float64), 1.5
    draws = torch.distributions.Categorical(logits=theta).sample((200_000,))
    x = torch.nn.functional.one_hot(draws, 2).to(torch.float64)
    monte_carlo = P.polynomial_loss(x, c, p)
    error = monte_carlo.std() / math.sqrt(len(monte_carlo))
    assert abs(monte_carlo.mean() - P.exact_loss(theta, c, p)) < 5 * error


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_polynomial_loss_gradient_is_the_true_derivative(p):
    torch.manual_seed(1)
    c = torch.rand(7, dtype=torch.float64)
    for x in (torch.randint(0, 2, (4, 7, 2)).to(torch.float64), torch.rand(4, 7, 2, dtype=torch.float64)):
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        P.polynomial_loss(a, c, p).sum().backward()
        (b[..., 0] - c).abs().pow(p).mean(-1).sum().backward()
        assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-14)


def test_polynomial_loss_gradient_keeps_the_layout_of_its_input():
    """The trainer passes the one-hot as two contiguous planes, (seeds, 2, batch, L) seen as
    (seeds, batch, L, 2); the gradient comes back in that layout, with the same values."""
    c, p = torch.rand(5, dtype=torch.float64), 1.5
    planes = torch.randint(0, 2, (3, 2, 4, 5)).to(torch.float64)
    x = planes.movedim(1, -1).requires_grad_()          # not contiguous: categories are planes
    gradient, = torch.autograd.grad(P.polynomial_loss(x, c, p).sum(), x)
    reference = x.detach().contiguous().requires_grad_()
    (reference[..., 0] - c).abs().pow(p).mean(-1).sum().backward()
    assert gradient.stride() == x.stride()
    assert torch.allclose(gradient, reference.grad, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- trainer
def test_batched_adam_equals_torch_adam_run_per_seed():
    torch.manual_seed(2)
    start = torch.randn(4, 5, 2)
    grads = torch.randn(30, 4, 5, 2)
    batched = start.clone().requires_grad_()
    adam = P.BatchedAdam(batched)
    for g in grads:
        batched.grad = g.clone()
        adam.step()
    for seed in range(4):
        alone = start[seed].clone().requires_grad_()
        reference = torch.optim.Adam([alone], lr=1e-3)
        for g in grads:
            alone.grad = g[seed].clone()
            reference.step()
        assert torch.allclose(batched[seed].detach(), alone.detach(), rtol=0, atol=1e-7)


def test_seeds_train_independently():
    # The summed objective gives each seed the gradient of its own loss: perturbing seed 1's
    # theta leaves seed 0's gradient unchanged (same samples via sample=).
    c, shape = torch.full((6,), 0.45), (3, 8, 6, 2)
    sample = torch.randint(0, 2, shape[:-1])
    grads = []
    for shift in (0.0, 0.5):
        theta = P.initial_theta(3, 6)
        theta[1, :, 0] += shift        # moves seed 1's probabilities only
        theta.requires_grad_()
        y, _ = reinmax.reinmax(theta.unsqueeze(1).expand(shape), 1.3, sample=sample)
        P.polynomial_loss(y, c, 2.0).mean(-1).sum().backward()
        grads.append(theta.grad)
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][2], grads[1][2])
    assert not torch.equal(grads[0][1], grads[1][1])


def test_initial_theta_depends_only_on_the_seed():
    assert torch.equal(P.initial_theta(2, 6)[1], P.initial_theta(5, 6)[1])
    assert P.initial_theta(3, 6).abs().max() <= P.INIT_RANGE


def test_same_config_gives_the_same_numbers_and_training_helps():
    config = P.PolynomialConfig(**dict(TINY, methods=["ReinMax", "STGS"], taus=1.3))
    first, second = P.run(config, progress=False), P.run(config, progress=False)
    for method in config.methods:
        assert P.method_run(first, method)["exact_loss"] == P.method_run(second, method)["exact_loss"]
        assert P.method_run(first, method)["logged_loss"] == P.method_run(second, method)["logged_loss"]
        result = P.method_run(first, method)
        assert len(result["exact_loss"]) == 3 and len(result["exact_loss"][0]) == 5
        assert len(result["logged_loss"][0]) == 4
    assert first["provenance"]["torch_version"] == torch.__version__
    assert first["config"]["p"] == 2.0


@pytest.mark.parametrize("method", ["ST", "ReinMax", "STGS", "GST-1.0", "GR-MCK", "REINFORCE", "RLOO"])
def test_every_method_lowers_the_exact_loss(method):
    config = P.PolynomialConfig(p=2.0, L=4, batch_size=16, methods=[method], steps=100, epochs=3,
                                seeds=[0, 1],
                                method_options={"RLOO": {"num_samples": 4}} if method == "RLOO" else {})
    record = P.run(config, progress=False)
    assert list(record)[:5] == ["experiment", "config", "runs", "wall_s", "provenance"]
    exact = torch.tensor(P.method_run(record, method)["exact_loss"])
    assert (exact[:, -1] < exact[:, 0]).all(), exact


def test_interrupted_run_resumes_to_identical_results(tmp_path):
    config = P.PolynomialConfig(**dict(TINY, methods=["ST", "GST-1.0", "RLOO"], epochs=6))
    uninterrupted = P.run(config, progress=False)
    checkpoint = tmp_path / "run.ckpt"
    # Stop in the middle of the second method's fourth epoch (checkpoints every 2 epochs).
    with pytest.raises(P.Interrupted):
        P.run(config, progress=False, checkpoint=checkpoint, checkpoint_every=2, stop_after_steps=30 + 17)
    saved = torch.load(checkpoint, weights_only=False)
    assert list(saved["finished"]) == ["ST"] and saved["partial"]["epoch"] == 2
    resumed = P.run(config, progress=False, checkpoint=checkpoint, checkpoint_every=2)
    for method in config.methods:
        for key in ("exact_loss", "logged_loss"):
            assert P.method_run(resumed, method)[key] == P.method_run(uninterrupted, method)[key]
    # A finished checkpoint is not redone; another config is refused.
    again = P.run(config, progress=False, checkpoint=checkpoint, stop_after_steps=0)
    assert P.method_run(again, "RLOO")["exact_loss"] == P.method_run(uninterrupted, "RLOO")["exact_loss"]
    with pytest.raises(ValueError, match="belongs to other settings"):
        P.run(dataclasses.replace(config, p=3.0), progress=False, checkpoint=checkpoint)


def test_an_estimator_registered_later_is_trainable():
    calls = []

    def straight_through_twin(logits, tau=1.0, *args, **kwargs):
        calls.append(logits.shape)
        return reinmax.st(logits, tau, *args, **kwargs)

    reinmax.estimators.registry.register(reinmax.estimators.registry.EstimatorSpec(
        name="ST-twin", family="straight-through", function=straight_through_twin))
    try:
        record = P.run(P.PolynomialConfig(**dict(TINY, methods=["ST-twin"])), progress=False)
    finally:
        reinmax.estimators.registry.unregister("ST-twin")
    # (seeds, 2, batch, L): the trainer puts the categories at dim 1
    assert calls[-1] == (3, 2, 8, 6) and P.method_run(record, "ST-twin")["tau"] == 1.0


# ------------------------------------------------------------------ two-category fast paths
def _gradient(function, logits, grad_hard, grad_soft, **options):
    x = logits.clone().requires_grad_()
    y_hard, y_soft = function(x, **options)
    ((y_hard[..., :2] * grad_hard).sum() + (y_soft[..., :2] * grad_soft).sum()).backward()
    return y_hard.detach()[..., :2], x.grad[..., :2]


def _masked_third(logits):
    """The same two-category problem as three categories, the third masked: the general code."""
    return torch.cat([logits, torch.full(logits.shape[:-1] + (1,), -math.inf, dtype=logits.dtype)], -1)


@pytest.mark.parametrize("tau", [0.3, 1.0, 1.5])
@pytest.mark.parametrize("gap", [1.0, "p"])
def test_gst_two_category_path_equals_general_code(tau, gap):
    torch.manual_seed(3)
    logits = 2 * torch.randn(50, 2, dtype=torch.float64)
    grad_hard, grad_soft = torch.randn(50, 2, dtype=torch.float64), torch.randn(50, 2, dtype=torch.float64)
    sample = torch.randint(0, 2, (50,))
    fast = _gradient(reinmax.gst, logits, grad_hard, grad_soft, tau=tau, sample=sample, gap=gap)
    general = _gradient(reinmax.gst, _masked_third(logits), grad_hard, grad_soft, tau=tau,
                        sample=sample, gap=gap)
    assert torch.equal(fast[0], general[0])
    assert torch.allclose(fast[1], general[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tau", [0.5, 1.3])
def test_stgs_two_category_path_has_the_general_codes_distribution(tau):
    torch.manual_seed(4)
    logits = torch.tensor([[0.3, -0.2], [2.0, 0.0], [-1.0, 1.5]], dtype=torch.float64)
    grad_hard, grad_soft = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    draws = 40_000
    batch = logits.expand(draws, 3, 2)
    fast_y, fast_g = _gradient(reinmax.stgs, batch, grad_hard, grad_soft, tau=tau)
    slow_y, slow_g = _gradient(reinmax.stgs, _masked_third(batch), grad_hard, grad_soft, tau=tau)
    # Category frequencies: both match softmax(logits).
    probs = torch.softmax(logits, -1)[:, 0]
    for y in (fast_y, slow_y):
        assert (y[:, :, 0].mean(0) - probs).abs().max() < 5 * math.sqrt(0.25 / draws)
    # Mean gradients agree within five standard errors of their difference.
    fast_g, slow_g = fast_g.reshape(draws, -1), slow_g.reshape(draws, -1)
    error = torch.sqrt(fast_g.var(0) / draws + slow_g.var(0) / draws)
    assert ((fast_g.mean(0) - slow_g.mean(0)).abs() < 5 * error + 1e-12).all()


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 1.5])
def test_quadrature_converges(tau):
    a = torch.linspace(-15, 15, 61, dtype=torch.float64)
    reference = _binary.expected_slope(a, tau, nodes=4096)
    used = _binary.expected_slope(a, tau)
    tolerance = {0.1: 1e-4}.get(tau, 1e-6)     # the stated accuracy of QUADRATURE_NODES = 128
    for r, u in zip(reference, used):
        assert ((u - r).abs() / r).max() < tolerance
    # float32 logits get a float32 rule: rounding adds about 2e-6.
    for r, u in zip(reference, _binary.expected_slope(a.float(), tau)):
        assert u.dtype == torch.float32 and ((u.double() - r).abs() / r).max() < max(tolerance, 1e-5)


@pytest.mark.parametrize("tau", [0.3, 1.0, 1.5])
def test_gr_mck_quadrature_agrees_with_k_1000_monte_carlo(tau):
    """The quadrature is GR-MCK's conditional expectation; K = 1000 Monte Carlo (the general
    code, the paper's K) must agree with it within five of its own standard errors."""
    torch.manual_seed(5)
    logits = torch.tensor([[0.0, 0.0], [1.5, -0.5], [-2.0, 1.0], [4.0, 0.0]], dtype=torch.float64)
    grad_hard = torch.tensor([[1.0, 0.0]] * 4, dtype=torch.float64)
    grad_soft = torch.zeros(4, 2, dtype=torch.float64)
    for category in (0, 1):
        sample = torch.full((4,), category)
        _, quadrature = _gradient(reinmax.gumbel_rao, logits, grad_hard, grad_soft, tau=tau,
                                  sample=sample, K="quadrature")
        _, monte_carlo = _gradient(reinmax.gumbel_rao, _masked_third(logits), grad_hard, grad_soft,
                                   tau=tau, sample=sample, K=1000)
        # The spread of one conditional draw (STGS given the sample), for the standard error.
        _, single = _gradient(reinmax.stgs, logits.expand(1000, 4, 2), grad_hard, grad_soft,
                              tau=tau, sample=sample.expand(1000, 4))
        error = single.std(0) / math.sqrt(1000)
        assert ((quadrature - monte_carlo).abs() <= 5 * error + 1e-12).all()
        assert torch.allclose(quadrature[:, 1], -quadrature[:, 0])


def test_quadrature_needs_two_categories():
    with pytest.raises(ValueError, match="K='quadrature' needs two categories"):
        reinmax.gumbel_rao(torch.zeros(3, 5), K="quadrature")
    with pytest.raises(ValueError, match="K must be a positive integer or 'quadrature'"):
        reinmax.gumbel_rao(torch.zeros(3, 5), K="many")


def test_quadrature_on_an_expanded_batch_equals_it_on_a_copy():
    torch.manual_seed(6)
    theta = torch.randn(2, 1, 5, 2)
    sample = torch.randint(0, 2, (2, 7, 5))
    grad_hard = torch.randn(2, 7, 5, 2)
    results = []
    for logits in (theta.expand(2, 7, 5, 2), theta.expand(2, 7, 5, 2).contiguous()):
        x = logits.detach().requires_grad_()
        y, _ = reinmax.gumbel_rao(x, 0.7, sample=sample, K="quadrature")
        (y * grad_hard).sum().backward()
        results.append(x.grad)
    assert torch.allclose(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_sweep_in_workers_resumes_and_feeds_figure1_per_p(tmp_path, capsys):
    """The sweep's cells, trained by two worker processes, equal the same cells trained in
    this process; a second sweep trains nothing; figure1 takes each p's own temperatures."""
    out, records = tmp_path / "sweep.json", tmp_path / "records"
    common = ["--L", "4", "--batch-size", "4", "--steps", "3", "--epochs", "2", "--seeds", "0", "1",
              "--methods", "ReinMax", "ST", "--device", "cpu"]
    P.cli.main(["sweep", "--out", str(out), "--records", str(records), "--workers", "2",
             "--p", "1.5", "3", *common])
    sweeps = results.read_json(out)["sweeps"]
    assert [s["config"]["p"] for s in sweeps] == [1.5, 3.0]
    assert len(list(records.glob("*.json"))) == 2 * 2 * len(P.TABLE7_TEMPERATURES)
    config = P.PolynomialConfig(p=3.0, L=4, batch_size=4, steps=3, epochs=2, seeds=[0, 1],
                                methods=["ReinMax", "ST"], device="cpu")
    for method in ("ReinMax", "ST"):
        for tau in (0.1, 1.5):
            alone = P.run(dataclasses.replace(config, methods=[method], taus=tau), progress=False)
            assert sweeps[1]["final"][method][str(tau)] == pytest.approx(
                P.final_exact_losses(alone)[method][0], rel=1e-6)
    stamps = {path: path.stat().st_mtime_ns for path in records.glob("*.json")}
    P.cli.main(["sweep", "--out", str(out), "--records", str(records), "--workers", "2",
             "--p", "1.5", "3", *common])
    assert {path: path.stat().st_mtime_ns for path in records.glob("*.json")} == stamps

    figure = tmp_path / "figure1.json"
    P.cli.main(["figure1", "--sweep", str(out), "--out", str(figure), "--p", "1.5", "3", *common])
    runs = results.read_json(figure)["runs"]
    assert [r["config"]["taus"] for r in runs] == [s["chosen"] for s in sweeps]
    stamp = figure.stat().st_mtime_ns                 # finished configs are not trained again
    P.cli.main(["figure1", "--sweep", str(out), "--out", str(figure), "--p", "1.5", "3", *common])
    assert figure.stat().st_mtime_ns == stamp
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:           # the command line's one error line
        P.cli.main(["figure1", "--sweep", str(out), "--out", str(figure), "--p", "2", *common])
    assert stop.value.code == 2 and "no sweep for p=2, setting='A'" in capsys.readouterr().err


def test_a_sweep_cell_trained_on_another_device_answers_auto_only(tmp_path):
    config = P.PolynomialConfig(p=2.0, L=4, batch_size=4, steps=3, epochs=2, seeds=[0, 1],
                                methods=["ST"], device="cpu")
    record = P.sweep_cell(config, "ST", 0.5, out_dir=tmp_path, progress=False)
    path = P.sweep_record_path(tmp_path, config, "ST", 0.5)
    saved = results.read_json(path)
    saved["config"]["device"] = "cuda"                     # as if trained on a GPU
    saved["provenance"]["device"] = "cuda"
    results.write_json(path, saved)
    auto = dataclasses.replace(config, device="auto")
    assert P.sweep_cell(auto, "ST", 0.5, out_dir=tmp_path)["runs"] == record["runs"]
    with pytest.raises(ValueError, match="was trained on cuda, and device='cpu' asks for cpu"):
        P.sweep_cell(config, "ST", 0.5, out_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs: found 2, now 3"):
        P.sweep_cell(dataclasses.replace(auto, epochs=3), "ST", 0.5, out_dir=tmp_path)


def test_binary_score_methods_train_and_resume_exactly(tmp_path):
    """The binary score family (DisARM, RODEO, ...) trains through the same loop; RODEO's control
    network and its Adam travel in the checkpoint, so an interrupted run resumes to the same
    numbers."""
    config = P.PolynomialConfig(p=2.0, L=6, batch_size=12, setting="B", methods=["DisARM", "RODEO"],
                                steps=4, epochs=3, seeds=[0, 1],
                                method_options={"RODEO": {"num_samples": 3, "hidden": 8}})
    full = P.run(config, progress=False)
    path = tmp_path / "ck.pt"
    with pytest.raises(P.Interrupted):
        P.run(config, progress=False, checkpoint=path, checkpoint_every=1, stop_after_steps=6)
    resumed = P.run(config, progress=False, checkpoint=path, checkpoint_every=1)
    for a, b in zip(full["runs"], resumed["runs"]):
        assert a["exact_loss"] == b["exact_loss"] and a["tau"] is None
    with pytest.raises(ValueError, match=r"RODEO"):
        P.PolynomialConfig(methods=["RODEO"], method_options={"RODEO": {"num_samples": 5}})
    with pytest.raises(ValueError, match=r"control_lr"):
        P.PolynomialConfig(methods=["DisARM"], method_options={"DisARM": {"control_lr": -1}})
