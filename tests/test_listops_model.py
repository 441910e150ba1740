"""The Gumbel Tree-LSTM: the reference algorithm on a hand-built tree, padding and finished
sequences, the estimator's gradient through the blend, and the O(L) evaluation path equal to the
reference in float64."""
import pytest
import torch

import reinmax
from reinmax.models.treelstm import TreeLSTMClassifier, merge_spans

torch.set_num_threads(1)


def _model(estimator="ST", tau=1.0, **kwargs):
    torch.manual_seed(0)
    options = {"K": 100} if estimator == "GR-MCK" else {}
    model = TreeLSTMClassifier(12, 10, word_dim=6, hidden_dim=5, clf_hidden_dim=4, dropout=0.0,
                               estimator=reinmax.get_estimator(estimator, **options), tau=tau,
                               **kwargs).double()
    with torch.no_grad():                       # scores large enough to matter
        model.query.normal_(0, 1)
    return model


def _batch(lengths, length=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    length = length or max(lengths)
    ids = torch.randint(2, 12, (len(lengths), length), generator=g)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return ids, torch.tensor(lengths)


def test_hand_built_tree_of_three_leaves():
    model = _model().eval()
    ids, lengths = _batch([3])
    root, merges = model.encode(ids, lengths)
    h, c = model.leaves(ids)
    k = int(merges[0, 0])
    if k == 0:
        ph, pc = model.compose(h[:, 0], c[:, 0], h[:, 1], c[:, 1])
        expected, _ = model.compose(ph, pc, h[:, 2], c[:, 2])
    else:
        ph, pc = model.compose(h[:, 1], c[:, 1], h[:, 2], c[:, 2])
        expected, _ = model.compose(h[:, 0], c[:, 0], ph, pc)
    scores = model.scores(model.compose(h[:, :-1], c[:, :-1], h[:, 1:], c[:, 1:])[0])
    assert k == int(scores.argmax())
    torch.testing.assert_close(root, expected, rtol=0, atol=1e-14)
    assert merge_spans(merges[0].tolist(), 3) == ([(0, 2), (0, 3)] if k == 0 else [(1, 3), (0, 3)])


class _FixedChoice:
    """ST with the sample given: the greedy choice, so that a row's choices do not depend on
    the rows beside it (its gradient is ST's)."""

    def __call__(self, logits, tau, generator=None):
        return reinmax.st(logits, tau, sample=logits.argmax(-1))


@pytest.mark.parametrize("lengths", [[7, 3, 1, 5], [2, 2], [6, 1]])
def test_padding_and_finished_sequences_change_nothing(lengths):
    """Each row of a padded batch (training mode, estimator on) gives the root and the parameter
    gradient it gives alone, unpadded."""
    model = _model()
    model.estimator = _FixedChoice()
    model.train()
    ids, lens = _batch(lengths)
    weights = torch.randn(len(lengths), 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    root, merges = model.encode(ids, lens)
    (root * weights).sum().backward()
    encoder = [p for n, p in model.named_parameters() if not n.startswith(("hidden", "output"))]
    grad = lambda p: torch.zeros_like(p) if p.grad is None else p.grad.clone()  # noqa: E731
    together = [grad(p) for p in encoder]
    alone_roots, alone_grads = [], None
    model.zero_grad()
    for row, n in enumerate(lengths):
        r, m = model.encode(ids[row:row + 1, :n], lens[row:row + 1])
        assert m[0].tolist() == merges[row, :n - 1].tolist()
        assert (merges[row, n - 1:] == -1).all()
        (r * weights[row]).sum().backward()
        alone_roots.append(r[0])
    for p, g in zip(encoder, together):
        torch.testing.assert_close(grad(p), g, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(root, torch.stack(alone_roots), rtol=0, atol=1e-13)


def test_estimator_never_sees_an_empty_row():
    seen = []

    def spy(logits, tau, generator=None):
        seen.append(torch.isfinite(logits).any(-1).all().item())
        return reinmax.st(logits, tau)

    model = _model()
    model.estimator = spy
    model.train()
    ids, lens = _batch([9, 2, 1, 4])
    model(ids, lens).sum().backward()
    assert seen and all(seen)


@pytest.mark.parametrize("method", ["STGS", "GR-MCK", "GST-1.0", "ST", "ReinMax"])
def test_every_method_trains_and_reaches_the_query(method):
    model = _model(method, tau=0.5)
    model.train()
    ids, lens = _batch([8, 5, 3, 1])
    loss = torch.nn.functional.cross_entropy(model(ids, lens), torch.tensor([1, 2, 3, 4]))
    loss.backward()
    assert torch.isfinite(model.query.grad).all() and model.query.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("lengths", [[12, 9, 1, 2, 12, 5, 3], [1], [2], [3, 3], [20, 7]])
def test_greedy_reuse_equals_the_reference(lengths):
    model = _model().eval()
    ids, lens = _batch(lengths, seed=len(lengths))
    root, merges = model.encode(ids, lens)
    fast_root, fast_merges = model.encode_greedy(ids, lens)
    assert fast_merges.tolist() == merges.tolist()
    torch.testing.assert_close(fast_root, root, rtol=0, atol=1e-13)
    assert torch.equal(model(ids, lens), model(ids, lens, reuse=True))
    torch.testing.assert_close(model(ids, lens, reuse=False), model(ids, lens), rtol=0, atol=1e-13)


def test_reuse_is_refused_in_training_and_bad_input_is_named():
    model = _model().train()
    ids, lens = _batch([3, 2])
    with pytest.raises(ValueError, match="eval"):
        model.encode_greedy(ids, lens)
    with pytest.raises(ValueError, match="lengths"):
        model.encode(ids, torch.tensor([4, 2]))
    with pytest.raises(ValueError, match="hidden_dim"):
        TreeLSTMClassifier(12, hidden_dim=0)
    with pytest.raises(ValueError, match="dropout"):
        TreeLSTMClassifier(12, dropout=1.0)
    with pytest.raises(ValueError, match="tau"):
        TreeLSTMClassifier(12, tau=0)


def test_merge_spans_left_branching():
    assert merge_spans([0, 0, 0], 4) == [(0, 2), (0, 3), (0, 4)]
    assert merge_spans([2, 1, 0, -1], 4) == [(2, 4), (1, 4), (0, 4)]


def test_branching_spans_are_what_first_or_last_merges_build():
    from reinmax.models.treelstm import branching_spans
    for n in (3, 4, 7):
        assert set(merge_spans([0] * (n - 1), n)) == branching_spans(n, "left")
        assert set(merge_spans(list(range(n - 2, -1, -1)), n)) == branching_spans(n, "right")
        assert branching_spans(n, "left") != branching_spans(n, "right")
    with pytest.raises(ValueError, match="side"):
        branching_spans(4, "middle")


def test_tree_agreement_counts_right_branching_trees():
    """A parser that always merges the last two nodes builds right-branching trees only: the
    counts say so (before, only left-branching trees were counted, so such a parser showed 0 %)."""
    from reinmax.data import listops as data
    from reinmax.experiments.listops import analysis
    from reinmax.experiments.listops.training import tree_agreement

    split = data.encode([(3, "[MAX 2 3 ]"), (5, "[MIN 5 [MAX 1 6 ] 7 ]")], unit="token")

    class LastPair(torch.nn.Module):        # always merges the last two of the remaining nodes
        def encode_greedy(self, ids, lengths):
            merges = torch.full((len(lengths), ids.shape[1]), -1, dtype=torch.long)
            for row, n in enumerate(lengths.tolist()):
                merges[row, :n - 1] = torch.arange(n - 2, -1, -1)
            return None, merges

    found = tree_agreement(LastPair(), split)
    assert found["total"] == {"n": 2, "spans": 1, "left": 0, "right": 2}
    record = {"runs": [{"method": "X", "trees": found}]}
    assert analysis.example_branching(record) == {"X": {"n": 2, "left": 0, "right": 2, "spans": 1}}
    # Graded: every inner constituent of a right-branching tree ends at the last leaf, none starts
    # at the first (the whole expression, which both trees share, is not counted).
    inner = sum(len(e["text"].split()) - 2 for e in found["examples"])   # n - 2 each, none at the first leaf
    assert analysis.example_constituents(record) == {"X": {"n": 2, "constituents": inner, "left": 0,
                                                             "right": inner}}
    old = {"runs": [{"method": "X", "trees": {"by_depth": {"1": {"n": 1, "spans": 1, "left": 0}}}}]}
    assert analysis.agreement_table(old)["X"]["1"]["right"] is None      # an older record
