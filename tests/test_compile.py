"""torch.compile: every straight-through estimator compiles into one graph (fullgraph=True) with
the input checks off, when it draws from the global generator or is given its randomness
(``sample=``, ``gumbels=``, ``uniforms=``); compiled results equal eager ones. A ``generator=``
breaks the graph at the draw (PyTorch's compiler cannot trace a torch.Generator).

The ``aot_eager`` backend traces forward and backward as inductor would, without generating
code (seconds, not minutes). ``torch._dynamo.explain`` alone is not trusted: it can report no
break where ``fullgraph=True`` still fails, so every full-graph claim compiles with
``fullgraph=True``.
"""
import pytest
import torch

import reinmax
from reinmax import registry

NAMES = registry.names("straight-through")
OPTIONS = {"GR-MCK": {"K": 8}}      # a small K: the same code, a fraction of the time
UNIFORMS = ["ST", "ReinMax", "GST-1.0", "GST-p", "ReinMax-1/n", "ReinMax-1/n-authors"]


@pytest.fixture(autouse=True)
def _fresh_compiler():
    torch._dynamo.reset()
    reinmax.set_validate_args(False)
    yield
    reinmax.set_validate_args(True)
    torch._dynamo.reset()


def _loss(y_hard, y_soft, w):
    return (y_hard * w).sum() + (y_soft * w.flip(-1)).sum()


def _with_gradients(outputs, x):
    """(y_hard, loss) pairs, each followed by the loss's gradient (taken outside the compiled
    function: the compiled backward runs)."""
    result = []
    for y_hard, loss in zip(outputs[::2], outputs[1::2]):
        result += [y_hard, loss, torch.autograd.grad(loss, x, retain_graph=True)[0]]
    return result


def _inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, n, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, n, generator=g, dtype=torch.float64)
    sample = torch.randint(0, n, (4, 3), generator=g)
    return x, w, sample


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [2, 5])
def test_full_graph_given_the_sample_and_from_the_global_generator(name, n):
    """One fullgraph compile per estimator and size: a call given sample= (STGS: also gumbels=)
    and a call drawing from the global generator, values and gradients equal to eager."""
    fn = reinmax.get_estimator(name)
    options = OPTIONS.get(name, {})
    x, w, sample = _inputs(n)
    gumbels = -torch.empty_like(x).exponential_(generator=torch.Generator().manual_seed(1)).log()

    def step(x, sample, gumbels):
        results = []
        calls = [dict(sample=sample), {}] + ([dict(gumbels=gumbels)] if name == "STGS" else [])
        for kwargs in calls:
            y_hard, y_soft = fn(x, 1.3, **kwargs, **options)
            results += [y_hard, _loss(y_hard, y_soft, w)]
        return results

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    x = x.requires_grad_(True)
    with torch._inductor.config.patch(fallback_random=True):
        torch.manual_seed(5)
        got = _with_gradients(compiled(x, sample, gumbels), x)
    torch.manual_seed(5)
    expected = _with_gradients(step(x, sample, gumbels), x)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", UNIFORMS)
@pytest.mark.parametrize("n", [2, 5])
def test_uniforms_give_the_generators_samples_in_a_full_graph(name, n):
    """A user's own stream in a full graph: uniforms=torch.rand(shape, generator=g) draws what
    generator=g draws, compiled or not."""
    fn = reinmax.get_estimator(name)
    x, w, _ = _inputs(n, seed=2)
    uniforms = torch.rand(4, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)

    def step(x, uniforms):
        y_hard, y_soft = fn(x, 0.8, uniforms=uniforms)
        return [y_hard, _loss(y_hard, y_soft, w)]

    x = x.requires_grad_(True)
    got = _with_gradients(torch.compile(step, backend="aot_eager", fullgraph=True)(x, uniforms), x)
    y_hard, y_soft = fn(x, 0.8, generator=torch.Generator().manual_seed(9))
    expected = _with_gradients([y_hard, _loss(y_hard, y_soft, w)], x)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,breaks", [("ReinMax", 1), ("GST-1.0", 1), ("STGS", 2)])
@pytest.mark.parametrize("n", [2, 5])
def test_a_generator_breaks_the_graph_at_the_draw_only(name, breaks, n):
    """With generator= the compiled call runs (the draw outside the graph) and gives eager's
    numbers; it breaks the graph once per draw (STGS with more than two categories draws twice:
    the category and the noise)."""
    fn = reinmax.get_estimator(name)
    x, w, _ = _inputs(n, seed=3)

    def step(x, generator):
        y_hard, y_soft = fn(x, 1.3, generator=generator)
        return (y_hard * w).sum() + (y_soft * w).sum(), y_hard

    got = torch.compile(step, backend="aot_eager")(x, torch.Generator().manual_seed(4))
    expected = step(x, torch.Generator().manual_seed(4))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(step)(x, torch.Generator().manual_seed(4))
    # Dynamo counts a break once per frame on the stack (and may record one twice when it
    # restarts its analysis); the reasons are the draws themselves, at one or two places.
    reasons = [str(b.reason) for b in explained.break_reasons]
    assert all("_rand_outside_graph" in r for r in reasons), reasons
    places = {(b.user_stack[-1].filename, b.user_stack[-1].lineno) for b in explained.break_reasons}
    assert 1 <= len(places) <= (breaks if n > 2 or name != "STGS" else 1), places
    with pytest.raises(Exception):
        torch._dynamo.reset()
        torch.compile(step, backend="aot_eager", fullgraph=True)(x, torch.Generator().manual_seed(4))


def test_bad_uniforms_are_clear_errors():
    reinmax.set_validate_args(True)
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"uniforms must have shape \(4,\)"):
        reinmax.st(x, uniforms=torch.rand(4, 5))
    with pytest.raises(ValueError, match=r"uniforms must lie in \[0, 1\)"):
        reinmax.reinmax(x, uniforms=torch.full((4,), 1.0))
    with pytest.raises(TypeError, match="uniforms must be a floating tensor"):
        reinmax.gst(x, uniforms=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="either sample= or uniforms="):
        reinmax.st(x, sample=torch.zeros(4, dtype=torch.long), uniforms=torch.rand(4))


# ------------------------------------------------------- two categories: opaque operators
# While compiling, the two-category forward passes of ST, ReinMax, STGS and GST run as custom
# operators around the eager kernels (reinmax.estimators.two_category, "torch.compile: opaque operators"): what
# inductor made of the traced code ran at half eager's speed at the QP shape (issue 13).
BINARY = {"ST": "binary_st_reinmax", "ReinMax": "binary_st_reinmax", "STGS": "binary_gumbel",
          "GST-1.0": "binary_gumbel", "GST-p": "binary_gumbel"}


def _expanded_inputs(dim, seed=0):
    """A parameter broadcast over a batch (stride 0, as in the QP problem), categories at dim."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(1, 3, 2, generator=g, dtype=torch.float64).movedim(-1, dim)
    shape = list(theta.shape)
    shape[0 if dim != 0 else 1] = 4
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    sample_shape = [n for d, n in enumerate(shape) if d != dim % 3]
    return theta.requires_grad_(True), shape, w, torch.randint(0, 2, sample_shape, generator=g)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("dim", [-1, 0])
def test_two_categories_compile_to_one_opaque_operator_equal_to_eager(name, dim):
    """The compiled graph calls the operator (not the traced kernels), and given sample= or
    drawing from the global generator its values, gradients and layouts are eager's, for a
    broadcast (stride-0) input and for categories not last."""
    fn = reinmax.get_estimator(name)
    theta, shape, w, sample = _expanded_inputs(dim)

    def step(theta, sample):
        results = []
        for kwargs in (dict(sample=sample), {}):
            y_hard, y_soft = fn(theta.expand(shape), 1.3, dim=dim, **kwargs)
            results += [y_hard, y_soft, _loss(y_hard, y_soft, w)]
        return results

    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

    compiled = torch.compile(step, backend=backend, fullgraph=True)
    torch.manual_seed(5)
    got = compiled(theta, sample)
    torch.manual_seed(5)
    expected = step(theta, sample)
    assert f"reinmax.{BINARY[name]}" in graphs[0].code
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.stride() == b.stride()
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # y_soft and each loss, followed by the loss's gradient (the compiled backward runs)
    got, expected = (_with_gradients(r[1:3] + r[4:6], theta) for r in (got, expected))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(BINARY))
def test_two_calls_in_one_compiled_function_draw_anew(name):
    """Two identical calls draw different numbers: the operators are ordered effects, not merged
    into one draw (AOTAutograd's common-subexpression pass merged them in a differentiated
    graph when they were only tagged nondeterministic_seeded), and the draws are eager's."""
    fn = reinmax.get_estimator(name)
    theta = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)    # probability 1/2

    def two(theta):
        x = theta.expand(64, 3, 2)
        return fn(x, 1.0)[0], fn(x, 1.0)[0]

    torch.manual_seed(0)
    first, second = torch.compile(two, backend="aot_eager", fullgraph=True)(theta)
    assert not torch.equal(first, second)
    torch.manual_seed(0)
    for a, b in zip((first, second), two(theta)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_binary_operators_fake_layouts_match_the_kernels():
    """torch.library.opcheck: the fake implementations give the kernels' shapes, dtypes and
    strides (inductor reads the outputs with them), for broadcast inputs and categories not last."""
    from reinmax import _binary
    x = torch.randn(1, 5, 2, dtype=torch.float64).expand(4, 5, 2)
    for logits, dim in ((x, 2), (x.movedim(2, 0), 0), (torch.randn(4, 2, 3), 1)):
        index = torch.randint(0, 2, logits.movedim(dim, -1).shape[:-1])
        # tau: a 0-d tensor, or None for tau = 1 (two_category._op_tau)
        for given, tau in ((None, None), (index, torch.tensor(1.3, dtype=torch.float64))):
            for reinmax_ in (False, True):
                torch.library.opcheck(_binary._st_reinmax_op, (logits, given, None, tau, dim, reinmax_),
                                      test_utils=("test_schema", "test_faketensor"))
            for kind in ("stgs", "gst", "gst-p"):
                torch.library.opcheck(_binary._gumbel_op, (logits, given, None, tau, dim, kind, 1.0),
                                      test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("name", ["ReinMax", "STGS"])
def test_inductor_compiles_the_operators_and_draws_eagers_numbers(name):
    """The inductor backend itself (seconds at this size): two calls draw anew, and the draws,
    values and gradients are eager's for the same seed (the operators draw with torch.rand)."""
    fn = reinmax.get_estimator(name)
    theta = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 3, 2, dtype=torch.float64)

    def step(theta):
        x = theta.expand(8, 3, 2)
        (a, soft), (b, _) = fn(x, 1.3), fn(x, 1.3)
        return a, b, _loss(a, soft, w) + (b * w).sum()

    torch.manual_seed(1)
    got = torch.compile(step, fullgraph=True)(theta)
    torch.manual_seed(1)
    expected = step(theta)
    assert not torch.equal(got[0], got[1])
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
    for a, b in zip(_with_gradients(got[1:], theta), _with_gradients(expected[1:], theta)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
