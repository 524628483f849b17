"""The three constructed heads: each argmax lands where its rule says, on random sequences."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import (
    head_weights,
    induction_head,
    positional_head,
    previous_token_head,
    residual_stream,
)

# small vocabularies make repeated tokens (and repeated repeats) common
sequences = st.integers(1, 6).flatmap(
    lambda vocab: st.tuples(st.just(vocab), st.lists(st.integers(0, vocab - 1),
                                                     min_size=1, max_size=40)))
dtypes = st.sampled_from([torch.float64, torch.float32])


def induction_target(tokens: list[int], i: int) -> int:
    """The book's rule: j = p + 1 for the latest p < i with x_p = x_i; else the sink, 0."""
    earlier = [p for p in range(i) if tokens[p] == tokens[i]]
    return earlier[-1] + 1 if earlier else 0


def _check_causal_rows(w: torch.Tensor) -> None:
    n = w.shape[-1]
    future = ~torch.ones(n, n, dtype=torch.bool).tril()
    assert (w[..., future] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w[..., 0]))


@settings(max_examples=50, deadline=None)
@given(case=sequences, dtype=dtypes)
def test_positional_head_peaks_on_the_diagonal_and_decays_with_distance(case, dtype):
    vocab, tokens = case
    q, k = positional_head(tokens, vocab, dtype=dtype)
    w = head_weights(q, k)
    _check_causal_rows(w)
    n = len(tokens)
    assert w.argmax(-1).tolist() == list(range(n))
    logits = q @ k.mT
    for i in range(1, n):
        score = logits[i, : i + 1].flip(0)  # by distance 0, 1, ..., i
        assert (score[1:] < score[:-1]).all()
        # weights far out underflow to 0 (in float32 beyond about 20 positions at n = 40),
        # so they are only non-increasing
        row = w[i, : i + 1].flip(0)
        assert (row[1:] <= row[:-1]).all()
    # a positional head ignores the tokens
    w_other = head_weights(*positional_head([0] * n, vocab, dtype=dtype))
    torch.testing.assert_close(w, w_other)


@settings(max_examples=50, deadline=None)
@given(case=sequences, dtype=dtypes)
def test_previous_token_head_attends_to_the_position_before(case, dtype):
    vocab, tokens = case
    w = head_weights(*previous_token_head(tokens, vocab, dtype=dtype))
    _check_causal_rows(w)
    n = len(tokens)
    assert w.argmax(-1).tolist() == [max(i - 1, 0) for i in range(n)]
    if n > 1:  # default sharpness 6: the target holds nearly all the mass
        assert w[torch.arange(1, n), torch.arange(n - 1)].min() > 0.98


@settings(max_examples=50, deadline=None)
@given(case=sequences, dtype=dtypes)
def test_induction_head_attends_after_the_latest_earlier_occurrence(case, dtype):
    vocab, tokens = case
    w = head_weights(*induction_head(tokens, vocab, dtype=dtype))
    _check_causal_rows(w)
    n = len(tokens)
    assert w.argmax(-1).tolist() == [induction_target(tokens, i) for i in range(n)]
    # every successor of an earlier occurrence outweighs every other visible key
    for i in range(n):
        successors = {p + 1 for p in range(i) if tokens[p] == tokens[i]}
        if successors:
            others = [j for j in range(i + 1) if j not in successors]
            if others:
                assert w[i, sorted(successors)].min() > w[i, others].max()


def test_induction_head_on_a_repeated_segment():
    # the quick brown fox | the quick brown fox: the second half reads one step ahead
    tokens = [0, 1, 2, 3, 0, 1, 2, 3]
    w = head_weights(*induction_head(tokens, 4))
    assert w.argmax(-1).tolist() == [0, 0, 0, 0, 1, 2, 3, 4]


@settings(max_examples=25, deadline=None)
@given(case=sequences)
def test_keys_and_queries_never_read_the_future(case):
    """Changing the last token changes no key (keys read x_{j-1}) and only the last query."""
    vocab, tokens = case
    changed = [*tokens[:-1], (tokens[-1] + 1) % vocab]
    for head in (positional_head, previous_token_head, induction_head):
        q, k = head(tokens, vocab, dtype=torch.float64)
        q2, k2 = head(changed, vocab, dtype=torch.float64)
        torch.testing.assert_close(k2, k, rtol=0, atol=0)
        torch.testing.assert_close(q2[:-1], q[:-1], rtol=0, atol=0)


@settings(max_examples=25, deadline=None)
@given(vocab=st.integers(1, 5), seed=st.integers(0, 2**31 - 1), n=st.integers(1, 15))
def test_batched_tokens_match_one_sequence_at_a_time(vocab, seed, n):
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, vocab, size=(2, 3, n))
    for head in (positional_head, previous_token_head, induction_head):
        w = head_weights(*head(batch, vocab, max_len=20, dtype=torch.float64))
        assert w.shape == (2, 3, n, n)
        for a in range(2):
            for b in range(3):
                one = head_weights(*head(batch[a, b], vocab, max_len=20, dtype=torch.float64))
                torch.testing.assert_close(w[a, b], one, rtol=0, atol=1e-12)


def test_residual_stream_layout():
    h = residual_stream(torch.tensor([2, 0, 2]), 3, dtype=torch.float64)
    assert h.shape == (3, 2 * 3 + 4)
    torch.testing.assert_close(h[:, :3], torch.eye(3, dtype=torch.float64)[[2, 0, 2]])
    torch.testing.assert_close(h[:, 3:6], torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 0, 0]],
                                                       dtype=torch.float64))
    torch.testing.assert_close(h[:, 6:8].norm(dim=-1), torch.ones(3, dtype=torch.float64))
    assert h[:, 8].tolist() == [1.0, 1.0, 1.0] and h[:, 9].tolist() == [1.0, 0.0, 0.0]
    assert residual_stream([1, 0], 2).dtype == torch.get_default_dtype()


def test_decay_sets_the_logit_drop_of_the_positional_head():
    q, k = positional_head(list(range(10)), 10, decay=0.7, dtype=torch.float64)
    logits = q @ k.T
    assert float(logits[5, 5] - logits[5, 4]) == pytest.approx(0.7, rel=1e-12)
    assert float(logits[5, 4] - logits[5, 3]) > 0.7  # the drop grows with distance


def test_previous_token_sharpness_is_the_logit_gap_to_the_neighbours():
    q, k = previous_token_head(list(range(10)), 10, sharpness=5.0, dtype=torch.float64)
    logits = q @ k.T
    assert float(logits[6, 5] - logits[6, 6]) == pytest.approx(5.0, rel=1e-12)
    assert float(logits[6, 5] - logits[6, 4]) == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: positional_head([0, 1.5], 3), TypeError, "tokens"),
        (lambda: positional_head(np.array([0.0, 1.0]), 3), TypeError, "tokens"),
        (lambda: positional_head([True, False], 3), TypeError, "tokens"),
        (lambda: positional_head("abc", 3), TypeError, "tokens"),
        (lambda: positional_head([0, 3], 3), ValueError, "tokens"),
        (lambda: positional_head([-1, 0], 3), ValueError, "tokens"),
        (lambda: positional_head([], 3), ValueError, "tokens"),
        (lambda: positional_head([0, 1], 0), ValueError, "vocab_size"),
        (lambda: positional_head([0, 1], 2.0), TypeError, "vocab_size"),
        (lambda: positional_head([0, 1, 0], 2, max_len=2), ValueError, "max_len"),
        (lambda: positional_head([0, 1], 2, decay=0), ValueError, "decay"),
        (lambda: positional_head([0, 1], 2, decay=float("inf")), ValueError, "decay"),
        (lambda: previous_token_head([0, 1], 2, sharpness=-1), ValueError, "sharpness"),
        (lambda: induction_head([0, 1], 2, sharpness=0), ValueError, "sharpness"),
        (lambda: residual_stream([0, 1], 2, dtype=torch.int64), TypeError, "dtype"),
    ],
)
def test_heads_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
