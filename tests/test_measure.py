"""peak_memory counts the tensor storage a call allocates; best_time takes the minimum."""

import pytest
import torch

from kernelnotes.measure import best_time, peak_memory


@pytest.mark.version_tied  # counts the allocations of torch's own operators
def test_peak_memory_sees_a_temporary_that_is_freed():
    n = 300

    def work():
        a = torch.ones(n, 64)  # 76.8 kB, alive to the end
        b = a @ a.T  # 360 kB, freed before c is made
        total = b.sum()
        del b
        c = torch.zeros(n, n // 2)  # 180 kB
        return total + c.sum()

    result, peak = peak_memory(work)
    assert result.item() == n * n * 64
    # a, b and the scalar sum live together; c comes after b is gone
    assert peak == n * 64 * 4 + n * n * 4 + 4


@pytest.mark.version_tied  # counts the allocations of torch's own operators
def test_peak_memory_ignores_views_and_inputs():
    x = torch.ones(1000, 100)
    _, peak = peak_memory(lambda: x.T[:10].unsqueeze(0).view(10, 1000))
    assert peak == 0  # only views of an input: nothing new
    _, peak = peak_memory(lambda: x.T.reshape(-1))  # flattening x.T must copy
    assert peak == x.numel() * 4


@pytest.mark.version_tied  # counts the allocations of torch's own operators
def test_peak_memory_grows_quadratically_for_softmax_attention():
    peaks = []
    for n in (128, 256):
        q = torch.randn(1, n, 16)
        _, peak = peak_memory(lambda q=q: torch.softmax(q @ q.mT, dim=-1) @ q)
        peaks.append(peak)
    assert 3.5 < peaks[1] / peaks[0] < 4.5


def test_best_time():
    calls = []
    assert best_time(calls.append, 1, repeat=3) >= 0
    assert calls == [1, 1, 1]
    for repeat, error in ((0, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="repeat"):
            best_time(print, repeat=repeat)
