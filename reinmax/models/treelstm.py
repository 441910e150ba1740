"""The Gumbel Tree-LSTM of Choi et al. (2018) as the ReinMax ListOps code runs it (Section 6.2).

A leaf LSTM reads the symbols; then, L - 1 times, every adjacent pair of the current nodes is
composed by a binary Tree-LSTM cell, a query vector scores each candidate parent
(``query . h / sqrt(H)``, masked positions at -inf), and one pair is merged: in training the
choice is made by a straight-through estimator (any ``reinmax.get_estimator`` entry; the one-hot
sample carries its surrogate gradient), at evaluation by the greedy argmax. The one-hot choice
and its cumulative sum blend the new parent with copies of the left and right neighbours, so
gradients reach the scores through both. The root feeds an MLP classifier.

Two encoders give the same numbers:

* :meth:`TreeLSTMClassifier.encode` -- the reference algorithm: at each step every adjacent pair
  is composed again, O(L^2) compositions per expression. Training uses it.
* :meth:`TreeLSTMClassifier.encode_greedy` -- evaluation only (greedy, no gradient): a merge at
  position k changes only the candidate parents at k - 1 and k; the others are the previous
  step's, shifted. Two compositions per step, O(L) per expression; equal to ``encode`` in
  evaluation mode (tests check it in float64). In training this reuse is *not* exact for the
  straight-through gradient (unchanged nodes depend on the one-hot through the blend), so it is
  not offered there.

Finished sequences are the model's business: a row with no valid candidate never reaches the
estimator (its state is carried unchanged, as the reference's ``done_mask`` does).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

_OWNER = "TreeLSTMClassifier"


def _fail(name, value, allowed):
    raise ValueError(f"{_OWNER}: {name} must be {allowed}; got {name}={value!r}")


class BinaryTreeLSTM(nn.Module):
    """``c = c_l sigma(f_l + 1) + c_r sigma(f_r + 1) + tanh(u) sigma(i)``, ``h = sigma(o) tanh(c)``
    from one Linear(2H -> 5H) on ``[h_l; h_r]`` (orthogonal weights, zero bias)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.linear = nn.Linear(2 * hidden, 5 * hidden)
        nn.init.orthogonal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hl, cl, hr, cr):
        """The parent's ``(h, c)`` from the left and right children's states."""
        i, fl, fr, u, o = self.linear(torch.cat([hl, hr], -1)).chunk(5, -1)
        c = cl * torch.sigmoid(fl + 1) + cr * torch.sigmoid(fr + 1) + torch.tanh(u) * torch.sigmoid(i)
        return torch.sigmoid(o) * torch.tanh(c), c


def _blend(select, parent, left_child, right_neighbour):
    # positions left of the merge keep their node, the merge gets the parent, the rest shift left
    cumsum = select.cumsum(1)
    s, left, right = select.unsqueeze(2), (1 - cumsum).unsqueeze(2), (cumsum - select).unsqueeze(2)
    return s * parent + left * left_child + right * right_neighbour


class TreeLSTMClassifier(nn.Module):
    """Embedding -> dropout -> leaf LSTM -> Gumbel Tree-LSTM -> MLP classifier.

    ``estimator``: a straight-through estimator ``f(logits, tau) -> (one_hot, probs)`` (from
    ``reinmax.get_estimator``); ``tau`` its temperature. Sizes as the reference names them
    (paper: word 300, hidden 300, classifier 300, dropout 0.5)."""

    def __init__(self, vocab_size: int, num_classes: int = 10, *, word_dim: int = 300,
                 hidden_dim: int = 300, clf_hidden_dim: int = 300, dropout: float = 0.5,
                 estimator: Optional[Callable] = None, tau: float = 1.0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("num_classes", num_classes),
                            ("word_dim", word_dim), ("hidden_dim", hidden_dim),
                            ("clf_hidden_dim", clf_hidden_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(name, value, "an integer >= 1")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            _fail("dropout", dropout, "a number in [0, 1)")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau < math.inf:
            _fail("tau", tau, "a number in (0, inf)")
        self.hidden_dim, self.estimator, self.tau = hidden_dim, estimator, float(tau)
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0, 0.01)
        self.dropout = nn.Dropout(dropout)
        self.leaf = nn.LSTMCell(word_dim, hidden_dim)
        nn.init.kaiming_normal_(self.leaf.weight_ih)
        nn.init.orthogonal_(self.leaf.weight_hh)
        nn.init.zeros_(self.leaf.bias_ih)
        nn.init.zeros_(self.leaf.bias_hh)
        with torch.no_grad():                      # forget-gate bias 1 (gates i, f, g, o)
            self.leaf.bias_ih[hidden_dim:2 * hidden_dim] = 1
        self.compose = BinaryTreeLSTM(hidden_dim)
        self.query = nn.Parameter(torch.empty(hidden_dim).normal_(0, 0.01))
        self.hidden = nn.Linear(hidden_dim, clf_hidden_dim)
        nn.init.kaiming_normal_(self.hidden.weight)
        nn.init.zeros_(self.hidden.bias)
        self.output = nn.Linear(clf_hidden_dim, num_classes)
        nn.init.uniform_(self.output.weight, -0.002, 0.002)
        nn.init.zeros_(self.output.bias)

    # ------------------------------------------------------------------ pieces
    def leaves(self, ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(h, c)`` of the leaf LSTM at every position, each (B, L, H). Padding comes after
        each sequence, so a one-direction LSTM's states at real positions do not see it."""
        if ids.dim() != 2:
            raise ValueError(f"{_OWNER}: ids must have shape (batch, length); got {tuple(ids.shape)}")
        x = self.dropout(self.embedding(ids))
        batch, length, _ = x.shape
        h, c = [], []
        state = None
        for t in range(length):            # the cell states are needed too, so step by step
            state = self.leaf(x[:, t], state)
            h.append(state[0])
            c.append(state[1])
        return torch.stack(h, 1), torch.stack(c, 1)

    def scores(self, parent_h: torch.Tensor) -> torch.Tensor:
        return (parent_h * self.query).sum(-1) / math.sqrt(self.hidden_dim)

    def _choose(self, logits: torch.Tensor, mask: torch.Tensor, generator=None) -> torch.Tensor:
        """One-hot choice per row; rows with no valid candidate get zeros and never reach the
        estimator (their state is carried by the done mask)."""
        masked = logits.masked_fill(~mask, float("-inf"))
        active = mask.any(1)
        select = torch.zeros_like(logits)
        if not self.training:
            index = masked.argmax(1, keepdim=True)
            return select.scatter(1, index, 1.0) * active.unsqueeze(1).to(logits.dtype)
        if self.estimator is None:
            raise ValueError(f"{_OWNER}: training needs an estimator (reinmax.get_estimator(...))")
        if bool(active.all()):
            return self.estimator(masked, self.tau, generator=generator)[0] if generator is not None \
                else self.estimator(masked, self.tau)[0]
        rows = active.nonzero().squeeze(1)
        chosen = (self.estimator(masked[rows], self.tau, generator=generator) if generator is not None
                  else self.estimator(masked[rows], self.tau))[0]
        return select.index_put((rows,), chosen)

    @staticmethod
    def _check(ids, lengths):
        if lengths.dim() != 1 or len(lengths) != len(ids):
            raise ValueError(f"{_OWNER}: lengths must have shape ({len(ids)},); got {tuple(lengths.shape)}")
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
            raise ValueError(f"{_OWNER}: lengths must be in [1, {ids.shape[1]}] (the padded length); "
                             f"got min {int(lengths.min())}, max {int(lengths.max())}")

    # ------------------------------------------------------------------ the two encoders
    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, generator=None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The reference algorithm (all adjacent pairs at every step). Returns the root ``h``
        (B, H) and the merge positions (B, L - 1), -1 where a sequence had finished."""
        self._check(ids, lengths)
        h, c = self.leaves(ids)
        batch, length = ids.shape
        length_mask = torch.arange(length, device=ids.device) < lengths.unsqueeze(1)
        merges = torch.full((batch, max(length - 1, 0)), -1, dtype=torch.long, device=ids.device)
        for i in range(length - 1):
            hl, hr, cl, cr = h[:, :-1], h[:, 1:], c[:, :-1], c[:, 1:]
            ph, pc = self.compose(hl, cl, hr, cr)
            mask = length_mask[:, i + 1:]
            if i < length - 2:
                select = self._choose(self.scores(ph), mask, generator)
                new_h, new_c = _blend(select, ph, hl, hr), _blend(select, pc, cl, cr)
            else:       # one candidate left: no choice to make
                select = mask.to(ph.dtype)
                new_h, new_c = ph, pc
            done = length_mask[:, i + 1].unsqueeze(1).unsqueeze(2).to(h.dtype)
            h, c = done * new_h + (1 - done) * hl, done * new_c + (1 - done) * cl
            merges[:, i] = torch.where(mask.any(1), select.detach().argmax(1), -1)
        return h[:, 0], merges

    @torch.no_grad()
    def encode_greedy(self, ids: torch.Tensor, lengths: torch.Tensor
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Evaluation (greedy, no gradient) with O(L) compositions: a merge at k recomposes only
        the candidates at k - 1 and k. Same results as :meth:`encode` in evaluation mode."""
        if self.training:
            raise ValueError(f"{_OWNER}: encode_greedy is for evaluation; call model.eval() first "
                             "(in training the reuse is not exact for the straight-through gradient)")
        self._check(ids, lengths)
        h, c = self.leaves(ids)
        batch, length = ids.shape
        length_mask = torch.arange(length, device=ids.device) < lengths.unsqueeze(1)
        merges = torch.full((batch, max(length - 1, 0)), -1, dtype=torch.long, device=ids.device)
        if length == 1:
            return h[:, 0], merges
        ph, pc = self.compose(h[:, :-1], c[:, :-1], h[:, 1:], c[:, 1:])
        rows = torch.arange(batch, device=ids.device)
        for i in range(length - 1):
            size = length - i                                  # nodes now; ph has size - 1
            mask = length_mask[:, i + 1:]
            active = mask.any(1)
            select = self._choose(self.scores(ph), mask)      # eval mode: greedy one-hot
            if i == length - 2:
                select = mask.to(ph.dtype)
            k = select.argmax(1)
            done = length_mask[:, i + 1].unsqueeze(1).unsqueeze(2).to(h.dtype)
            new_h = _blend(select, ph, h[:, :-1], h[:, 1:])
            new_c = _blend(select, pc, c[:, :-1], c[:, 1:])
            h, c = done * new_h + (1 - done) * h[:, :-1], done * new_c + (1 - done) * c[:, :-1]
            merges[:, i] = torch.where(active, k, -1)
            if size == 2:
                break
            # the next step's candidates: j < k - 1 keep ph[j], j > k take ph[j + 1]; k - 1 and k
            # are new. Finished rows (k is meaningless there) keep ph[:-1].
            cumsum = select.cumsum(1)
            keep_left = (1 - cumsum)[:, 1:].unsqueeze(2)     # 1 where j + 1 < k
            keep_right = (cumsum - select)[:, :-1].unsqueeze(2)  # 1 where j > k
            next_h = keep_left * ph[:, :-1] + keep_right * ph[:, 1:]
            next_c = keep_left * pc[:, :-1] + keep_right * pc[:, 1:]
            last = size - 2                                   # nodes now size - 1, indices 0..last
            a = (k - 1).clamp(0, last)
            b = k.clamp(0, last)
            lh = torch.stack([h[rows, a], h[rows, b]], 1)
            lc = torch.stack([c[rows, a], c[rows, b]], 1)
            rh = torch.stack([h[rows, (a + 1).clamp(max=last)], h[rows, (b + 1).clamp(max=last)]], 1)
            rc = torch.stack([c[rows, (a + 1).clamp(max=last)], c[rows, (b + 1).clamp(max=last)]], 1)
            nh, nc = self.compose(lh, lc, rh, rc)
            fresh = done.squeeze(2).squeeze(1) > 0
            for slot, position, valid in ((0, k - 1, k >= 1), (1, k, k <= size - 3)):
                use = fresh & valid
                index = position.clamp(0, size - 3)
                next_h[rows[use], index[use]] = nh[use, slot]
                next_c[rows[use], index[use]] = nc[use, slot]
            stale = ~fresh
            next_h[stale], next_c[stale] = ph[stale, :-1], pc[stale, :-1]
            ph, pc = next_h, next_c
        return h[:, 0], merges

    def classify(self, root: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(torch.relu(self.hidden(self.dropout(root)))))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, generator=None, *,
                reuse: bool = True) -> torch.Tensor:
        """Class logits. In evaluation mode with ``reuse`` (the default) the O(L) greedy encoder
        runs; otherwise the reference one."""
        if not self.training and reuse:
            root, _ = self.encode_greedy(ids, lengths)
        else:
            root, _ = self.encode(ids, lengths, generator)
        return self.classify(root)


def branching_spans(length: int, side: str) -> set:
    """The constituents of the left-branching tree (``side="left"``: always merge the first two
    nodes, ``((w1 w2) w3) ...``) or the right-branching one (``"right"``: always the last two,
    ``... (w3 (w4 w5))``) over ``length`` leaves, as :func:`merge_spans` writes them."""
    if side not in ("left", "right"):
        _fail("side", side, "'left' or 'right'")
    if side == "left":
        return {(0, k) for k in range(2, length + 1)}
    return {(k, length) for k in range(0, length - 1)}


def merge_spans(merges: Sequence[int], length: int) -> List[Tuple[int, int]]:
    """The constituents ``(start, end)`` (end exclusive, in leaf positions) that a sequence of
    merge positions builds over ``length`` leaves, in the order built (-1 entries are skipped)."""
    nodes = [(j, j + 1) for j in range(length)]
    spans = []
    for k in merges:
        k = int(k)
        if k < 0:
            continue
        if k + 1 >= len(nodes):
            raise ValueError(f"merge position {k} out of range for {len(nodes)} nodes")
        merged = (nodes[k][0], nodes[k + 1][1])
        nodes[k:k + 2] = [merged]
        spans.append(merged)
    return spans
