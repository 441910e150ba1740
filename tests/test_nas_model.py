"""The NATS-Bench cell and GDAS's forward: only the sampled operation runs, the gradients are
GDAS's, one sample per forward pass is shared by every cell, and the genotype string round-trips."""
import itertools

import pytest
import torch

import reinmax
from reinmax.models.nas import (EDGES, OPS, NASNetwork, count_parameter_free, gdas_weights,
                                genotype_from_str, genotype_to_str, random_genotype,
                                architecture_entropy)

torch.set_num_threads(1)

NATS_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_genotype_string_round_trip_and_order():
    g = genotype_from_str(NATS_EXAMPLE)
    assert g == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                 "skip_connect")
    assert genotype_to_str(g) == NATS_EXAMPLE
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        r = random_genotype(generator)
        assert genotype_from_str(genotype_to_str(r)) == r
    assert count_parameter_free(g) == 3


@pytest.mark.parametrize("bad", ["", "|none~0|", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_bad_genotype_strings_are_clear_errors(bad):
    with pytest.raises(ValueError, match="genotype string"):
        genotype_from_str(bad)
    with pytest.raises(ValueError, match="genotype must be"):
        genotype_to_str(("none",) * 5)


def _count_calls(network):
    calls = {}
    for layer_index, layer in enumerate(network.layers):
        if not hasattr(layer, "edges"):
            continue
        for e, ops in enumerate(layer.edges):
            for k, op in enumerate(ops):
                op.register_forward_hook(
                    lambda m, i, o, key=(layer_index, e, k): calls.__setitem__(key, calls.get(key, 0) + 1))
    return calls


@pytest.mark.parametrize("method", ["STGS", "ReinMax", "ST"])
def test_only_the_sampled_operation_runs_and_the_sample_is_shared(method):
    torch.manual_seed(0)
    net = NASNetwork(channels=4, cells=2, in_channels=1, num_classes=3)
    calls = _count_calls(net)
    generator = torch.Generator().manual_seed(1)
    estimator = reinmax.get_estimator(method)
    weights, index = gdas_weights(net.alpha, estimator, 1.0, generator)
    net(torch.randn(5, 1, 8, 8), sample=(weights, index))
    cells = [i for i, layer in enumerate(net.layers) if hasattr(layer, "edges")]
    assert len(cells) == 6
    expected = {(c, e, index[e]): 1 for c in cells for e in range(len(EDGES))}
    assert calls == expected          # every cell ran the same sampled op, once, on each edge


def test_gdas_gradients_of_the_weights_and_the_logits():
    """The sampled op's weight gets <G, op(x)>; every other op's weight gets sum(G) (G: the
    upstream gradient at the edge's target node); alpha gets the estimator's backward of those."""
    torch.manual_seed(0)
    net = NASNetwork(channels=3, cells=1, in_channels=1, num_classes=2).double()
    estimator = reinmax.get_estimator("ReinMax")
    generator = torch.Generator().manual_seed(3)
    weights, index = gdas_weights(net.alpha, estimator, 1.0, generator)
    weights.retain_grad()
    cells = [layer for layer in net.layers if hasattr(layer, "edges")]
    captured = {}

    # Each cell's forward as GDAS runs it, recording the sampled ops' outputs and the nodes'
    # gradients (the weights are shared by the three cells, so their gradients add up).
    def patched(c, cell):
        def forward(x, w, idx):
            nodes = [x]
            for i in range(1, 4):
                total = 0
                for e, (ii, j) in enumerate(EDGES):
                    if ii == i:
                        k = idx[e]
                        out = cell.edges[e][k](nodes[j])
                        captured[("op", c, e)] = out.detach()
                        others = torch.cat([w[e, :k], w[e, k + 1:]]).sum()
                        total = total + w[e, k] * out + others
                total.register_hook(lambda g, i=i: captured.__setitem__(("grad", c, i), g.detach()))
                nodes.append(total)
            return nodes[-1]
        return forward
    x = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    reference = net(x, sample=(weights, index)).detach()
    for c, cell in enumerate(cells):
        cell.forward = patched(c, cell)
    out = net(x, sample=(weights, index))
    assert torch.allclose(out, reference)        # the patched forward is the same function
    out.logsumexp(-1).sum().backward()
    for e, (i, j) in enumerate(EDGES):
        for k in range(len(OPS)):
            expected = sum((captured[("grad", c, i)] * captured[("op", c, e)]).sum()
                           if k == index[e] else captured[("grad", c, i)].sum()
                           for c in range(len(cells)))
            assert torch.allclose(weights.grad[e, k], expected, rtol=1e-10, atol=1e-12), (e, k)
    # alpha's gradient is the estimator's backward applied to those per-op gradients.
    alpha = net.alpha.detach().clone().requires_grad_(True)
    again, _ = estimator(alpha, 1.0, sample=torch.tensor(index))
    (again * weights.grad).sum().backward()
    assert torch.allclose(net.alpha.grad, alpha.grad, rtol=1e-10, atol=1e-12)


def test_the_same_forward_equals_the_fixed_cell_in_value():
    """With a one-hot sample the search network computes the fixed cell's function (same weights)."""
    torch.manual_seed(0)
    net = NASNetwork(channels=4, cells=1, in_channels=1, num_classes=3)
    generator = torch.Generator().manual_seed(5)
    weights, index = gdas_weights(net.alpha, reinmax.get_estimator("ST"), 1.0, generator)
    x = torch.randn(6, 1, 8, 8)
    out = net(x, sample=(weights, index))
    genotype = tuple(OPS[k] for k in index)
    fixed = NASNetwork(channels=4, cells=1, in_channels=1, num_classes=3, genotype=genotype)
    state = {}
    for name, value in net.state_dict().items():
        if name == "alpha":
            continue
        parts = name.split(".")
        if parts[0] == "layers" and parts[2] == "edges":        # layers.L.edges.e.k.rest
            e, k = int(parts[3]), int(parts[4])
            if k != index[e]:
                continue
            parts[4] = "0"
        state[".".join(parts)] = value
    # Search cells have no affine batch norms and use batch statistics; match that for the check.
    fixed.train()
    for module in fixed.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.track_running_stats = False
            module.running_mean = module.running_var = None
    missing, unexpected = fixed.load_state_dict(state, strict=False)
    assert not unexpected
    assert all(("weight" in m or "bias" in m) and ".edges." in m or "running" in m or "num_batches" in m
               for m in missing)
    with torch.no_grad():
        assert torch.allclose(out, fixed(x), atol=1e-5)


def test_network_shapes_parameters_and_errors():
    net = NASNetwork(channels=8, cells=1, in_channels=3, num_classes=100)
    assert net.alpha.shape == (6, 5) and net.alpha.abs().max() < 0.01
    assert all(p is not net.alpha for p in net.weights())
    out = net(torch.randn(2, 3, 32, 32), reinmax.get_estimator("STGS"), 10.0)
    assert out.shape == (2, 100)
    assert len(net.genotype()) == 6
    with pytest.raises(ValueError, match="estimator="):
        net(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="channels must be"):
        NASNetwork(channels=0)
    fixed = NASNetwork(channels=4, cells=1, in_channels=1, genotype=NATS_EXAMPLE)
    assert fixed.alpha is None and fixed(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_entropy():
    assert torch.allclose(architecture_entropy(torch.zeros(6, 5)), torch.full((6,), float(torch.log(torch.tensor(5.0, dtype=torch.float64))), dtype=torch.float64))


CODES = {"no": "none", "sk": "skip_connect", "c1": "nor_conv_1x1", "c3": "nor_conv_3x3", "ap": "avg_pool_3x3"}


def cell(code):
    """A genotype from results/nas's retrain file names: 'ap-sk-no-ap-sk-no'."""
    return tuple(CODES[c] for c in code.split("-"))


def test_pooling_polynomial_counts_paths_and_predicts_equal_networks():
    """Three cells the committed study found (results/nas/study_mnist) compute 2 P(x); their
    networks agree in value from the same seed, and a cell with another polynomial does not."""
    from reinmax.models.nas import pooling_polynomial
    same = ["ap-sk-no-ap-sk-no", "ap-sk-sk-ap-sk-no", "sk-ap-ap-ap-ap-no"]
    assert {pooling_polynomial(cell(c)) for c in same} == {((1, 2),)}
    assert pooling_polynomial(cell("ap-ap-no-ap-ap-no")) == ((1, 1), (2, 1))
    assert pooling_polynomial(cell("sk-sk-sk-sk-sk-sk")) == ((0, 4),)        # four identity paths
    assert pooling_polynomial(cell("no-no-no-no-no-no")) == ()
    assert pooling_polynomial(cell("ap-ap-c3-no-c3-ap")) is None
    x = torch.randn(4, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    outputs = {}
    for code in same + ["ap-ap-ap-ap-no-no"]:                # the last: P(x), not 2 P(x)
        torch.manual_seed(0)
        outputs[code] = NASNetwork(channels=4, cells=1, in_channels=1, genotype=cell(code))(x)
    for code in same[1:]:
        torch.testing.assert_close(outputs[code], outputs[same[0]], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(outputs["ap-ap-ap-ap-no-no"], outputs[same[0]], atol=1e-3)
    with pytest.raises(ValueError, match="genotype must be"):
        pooling_polynomial(("none",) * 5)
