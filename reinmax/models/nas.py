"""The NATS-Bench topology search space (NAS-Bench-201's cell) and GDAS's use of a one-hot sample.

The **cell**: four nodes, node 0 its input and node 3 its output; node ``i`` is the sum over
``j < i`` of one operation applied to node ``j``, so six edges (``EDGES``, in NATS-Bench's order
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``), each one of five operations (``OPS``): ``none`` (zero),
``skip_connect`` (identity), ``nor_conv_1x1`` and ``nor_conv_3x3`` (ReLU-Conv-BN),
``avg_pool_3x3`` (stride 1, padding 1, padding not counted): 5^6 = 15,625 cells.

The **macro skeleton** (NATS-Bench's ``generic_model``): a stem (Conv 3x3 to C channels + BN),
three stages of N cells at C, 2C and 4C channels joined by ResNet basic blocks of stride 2, then
BN-ReLU, global average pooling and a linear classifier. During search the batch norms use batch
statistics and the cells' batch norms have no affine parameters (NATS-Bench's ``--affine 0
--track_running_stats 0``); a retrained cell uses ordinary batch norms.

**GDAS** (Dong and Yang 2019, as ``xautodl``'s ``forward_gdas`` runs it): per forward pass one
architecture sample, a one-hot row per edge drawn from ``softmax(alpha)`` (``alpha``: 6 x 5 logits),
shared by every cell and every image of the batch. On each edge only the sampled operation ``k*``
is evaluated; the edge's output is ``w[k*] * op_k*(x) + sum_{k != k*} w[k]``, where ``w`` is the
estimator's one-hot (value 1 at ``k*``, 0 elsewhere, its backward the estimator's). The
non-sampled operations enter as the scalars ``w[k]`` (0 in the forward pass, broadcast over the
feature map), so the gradient they receive is the *sum of the upstream gradient over the whole
feature map* (all images, channels, positions), not its inner product with ``op_k(x)``, which
was never computed. The estimator (STGS in GDAS; ReinMax or any registered straight-through
estimator here) maps these per-operation gradients to the gradient of ``alpha``.

The **genotype** is the per-edge argmax of ``alpha``, written as NATS-Bench writes it:
``|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|``.
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

__all__ = ["OPS", "EDGES", "PARAMETER_FREE", "Genotype", "genotype_to_str", "genotype_from_str",
           "random_genotype", "count_parameter_free", "pooling_polynomial", "NASNetwork", "gdas_weights",
           "architecture_entropy"]

OPS: Tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: Tuple[Tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (i, j): i <- j
PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3"})
NODES = 4

Genotype = Tuple[str, ...]
"""One operation name per edge, in the order of ``EDGES``."""


# ------------------------------------------------------------------------- genotypes
def _check_genotype(genotype) -> Genotype:
    if not isinstance(genotype, (list, tuple)) or len(genotype) != len(EDGES) \
            or not all(op in OPS for op in genotype):
        raise ValueError(f"genotype must be a sequence of {len(EDGES)} operation names from "
                         f"{list(OPS)} (one per edge, in the order {EDGES}); got genotype={genotype!r}")
    return tuple(genotype)


def genotype_to_str(genotype: Sequence[str]) -> str:
    """NATS-Bench's string: one ``|op~j|`` group per node ``i = 1, 2, 3``, joined by ``+``."""
    genotype = _check_genotype(genotype)
    groups = []
    for i in range(1, NODES):
        groups.append("|" + "|".join(f"{genotype[e]}~{j}" for e, (ii, j) in enumerate(EDGES)
                                     if ii == i) + "|")
    return "+".join(groups)


def genotype_from_str(text: str) -> Genotype:
    """The inverse of :func:`genotype_to_str`; any other string is a ValueError saying why."""
    def bad(why: str):
        raise ValueError(f"genotype string must look like '|nor_conv_3x3~0|+|none~0|skip_connect~1|"
                         f"+|...~0|...~1|...~2|' with operations from {list(OPS)}; got {text!r} ({why})")
    if not isinstance(text, str):
        bad("not a string")
    groups = text.split("+")
    if len(groups) != NODES - 1:
        bad(f"{len(groups)} node groups, expected {NODES - 1}")
    ops = {}
    for i, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            bad(f"node {i}'s group {group!r} is not enclosed in '|'")
        items = group[1:-1].split("|")
        if len(items) != i:
            bad(f"node {i} has {len(items)} inputs, expected {i}")
        for j, item in enumerate(items):
            op, _, source = item.partition("~")
            if op not in OPS or source != str(j):
                bad(f"item {item!r} of node {i} is not '<op>~{j}'")
            ops[(i, j)] = op
    return tuple(ops[edge] for edge in EDGES)


def random_genotype(generator: torch.Generator) -> Genotype:
    """A cell drawn uniformly from the 15,625 (one operation per edge, independently)."""
    index = torch.randint(len(OPS), (len(EDGES),), generator=generator)
    return tuple(OPS[k] for k in index.tolist())


def count_parameter_free(genotype: Sequence[str]) -> int:
    """How many of the six edges hold an operation without parameters (none, skip, pooling)."""
    return sum(op in PARAMETER_FREE for op in _check_genotype(genotype))


def pooling_polynomial(genotype: Sequence[str]) -> Optional[Tuple[Tuple[int, int], ...]]:
    """What a cell without convolutions computes, as a polynomial in the pooling operator ``P``.

    Skip is the identity, ``none`` zero and pooling the linear map ``P``, so such a cell's output
    is ``sum_k c_k P^k(x)``, ``c_k`` the number of input-to-output paths through ``k`` poolings
    (a path with a ``none`` edge counts for nothing). Returns ``((k, c_k), ...)`` for the non-zero
    ``c_k`` in increasing ``k`` (``()``: the zero cell), or None when an edge holds a convolution.
    Two genotypes with the same polynomial are the same function of the input with the same (no)
    parameters, so networks built around them train identically from the same seed."""
    genotype = _check_genotype(genotype)
    if any(op not in PARAMETER_FREE for op in genotype):
        return None
    nodes = [{0: 1}]
    for i in range(1, NODES):
        total = {}
        for e, (ii, j) in enumerate(EDGES):
            if ii != i or genotype[e] == "none":
                continue
            shift = 1 if genotype[e] == "avg_pool_3x3" else 0
            for k, c in nodes[j].items():
                total[k + shift] = total.get(k + shift, 0) + c
        nodes.append(total)
    return tuple(sorted((k, c) for k, c in nodes[-1].items() if c))


def architecture_entropy(alpha: torch.Tensor) -> torch.Tensor:
    """The entropy (nats) of ``softmax(alpha)`` per edge, shape ``(edges,)``; log 5 = 1.609 is uniform."""
    log_p = torch.log_softmax(alpha.detach().double(), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


# ------------------------------------------------------------------------- operations
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool, track: bool):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track))


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, channels: int, affine: bool, track: bool) -> nn.Module:
    """One of ``OPS`` at stride 1 from ``channels`` to ``channels`` (as NATS-Bench builds them)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine, track)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine, track)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"operation must be one of {list(OPS)}; got {name!r}")


class ResNetBasicBlock(nn.Module):
    """NATS-Bench's reduction block: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus a shortcut
    AvgPool(2) + Conv1x1."""

    def __init__(self, c_in: int, c_out: int, track: bool):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, True, track)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, True, track)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Cell(nn.Module):
    """The four-node cell. A search cell holds all five operations on every edge; a fixed cell
    (``genotype`` given) holds only its own."""

    def __init__(self, channels: int, genotype: Optional[Genotype], affine: bool, track: bool):
        super().__init__()
        self.genotype = genotype
        names = [[op] for op in genotype] if genotype is not None else [list(OPS)] * len(EDGES)
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, channels, affine, track) for op in ops) for ops in names)

    def forward(self, x, weights: Optional[torch.Tensor] = None,
                index: Optional[List[int]] = None):
        nodes = [x]
        for i in range(1, NODES):
            total = 0
            for e, (ii, j) in enumerate(EDGES):
                if ii != i:
                    continue
                if self.genotype is not None:           # a fixed cell: its one operation
                    total = total + self.edges[e][0](nodes[j])
                    continue
                k_star = index[e]
                # GDAS: only the sampled operation is run; the others enter as their weights
                # (0 in the forward), broadcast over the feature map.
                out = weights[e, k_star] * self.edges[e][k_star](nodes[j])
                others = torch.cat([weights[e, :k_star], weights[e, k_star + 1:]]).sum()
                total = total + out + others
            nodes.append(total)
        return nodes[-1]


def gdas_weights(alpha: torch.Tensor, estimator: Callable, tau: float,
                 generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, List[int]]:
    """One architecture sample: the estimator's one-hot rows ``(edges, ops)`` (their backward is
    the estimator's) and the sampled operation per edge."""
    weights, _ = estimator(alpha, tau, generator=generator)
    index = weights.detach().argmax(-1).tolist()
    return weights, index


class NASNetwork(nn.Module):
    """The macro skeleton around search cells (``genotype=None``: architecture logits ``alpha``,
    GDAS's forward) or around one fixed cell (``genotype`` given: for retraining from scratch).

    ``channels`` is C, ``cells`` is N (cells per stage), ``in_channels`` 1 for MNIST, 3 for CIFAR.
    Parameters are split: :meth:`weights` (the network) and ``alpha`` (the architecture).
    """

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_channels: int = 3, genotype: Optional[Union[Sequence[str], str]] = None):
        super().__init__()
        for name, value in (("channels", channels), ("cells", cells), ("num_classes", num_classes),
                            ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NASNetwork: {name} must be an integer >= 1; got {name}={value!r}")
        if isinstance(genotype, str):
            genotype = genotype_from_str(genotype)
        self.fixed = genotype is not None
        self.genotype_fixed = _check_genotype(genotype) if self.fixed else None
        search = not self.fixed
        track = not search                  # during search: batch statistics only
        affine = not search                 # and no affine parameters in the cells' batch norms
        C = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C, track_running_stats=track))
        layers = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(width // 2, width, track))
            layers += [Cell(width, self.genotype_fixed, affine, track) for _ in range(cells)]
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C, track_running_stats=track), nn.ReLU())
        self.classifier = nn.Linear(4 * C, num_classes)
        if search:
            # NATS-Bench's initialisation: 1e-3 * N(0, 1), re-drawn by the caller's seed.
            self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))
        else:
            self.register_parameter("alpha", None)

    def weights(self) -> List[nn.Parameter]:
        """The network's parameters, without the architecture logits."""
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def genotype(self) -> Genotype:
        """The per-edge argmax of ``alpha`` (or the fixed cell)."""
        if self.fixed:
            return self.genotype_fixed
        return tuple(OPS[k] for k in self.alpha.detach().argmax(-1).tolist())

    def forward(self, x: torch.Tensor, estimator: Optional[Callable] = None, tau: float = 1.0,
                generator: Optional[torch.Generator] = None,
                sample: Optional[Tuple[torch.Tensor, List[int]]] = None) -> torch.Tensor:
        """Logits of the classes. A search network draws one architecture sample with
        ``estimator`` at ``tau`` (or takes ``sample = (weights, index)``) for the whole batch."""
        if not self.fixed:
            if sample is None:
                if estimator is None:
                    raise ValueError("NASNetwork.forward: a search network needs estimator= "
                                     "(e.g. reinmax.get_estimator('ReinMax')) or sample=")
                sample = gdas_weights(self.alpha, estimator, tau, generator)
            weights, index = sample
        else:
            weights, index = None, None
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h, weights, index) if isinstance(layer, Cell) else layer(h)
        h = self.lastact(h)
        return self.classifier(h.mean(dim=(2, 3)))
