"""The chapter-1 drawing: what it draws agrees with the smoother it illustrates."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure  # no backend, no global state

from kernelnotes import gaussian, nadaraya_watson
from kernelnotes.plotting import nadaraya_watson_panel


def test_panel_draws_the_smoother_and_sizes_points_by_weight():
    g = torch.Generator().manual_seed(3)
    x = torch.sort(5 * torch.rand(30, generator=g, dtype=torch.float64)).values
    y = torch.sin(x) + 0.1 * torch.randn(30, generator=g, dtype=torch.float64)
    ax = Figure().subplots()
    prediction = nadaraya_watson_panel(ax, x, y, x_query=2.0, bandwidth=0.4)
    expected, weights = nadaraya_watson(torch.tensor([[2.0]], dtype=torch.float64),
                                        x[:, None], y[:, None], gaussian, bandwidth=0.4)
    assert prediction == pytest.approx(expected.item(), abs=1e-12)
    # the blue curve is the smoother evaluated on the plotted grid
    (curve,) = [line for line in ax.get_lines() if line.get_label() == "smoothed curve"]
    grid = torch.as_tensor(curve.get_xdata())[:, None]
    smoothed, _ = nadaraya_watson(grid, x[:, None], y[:, None], gaussian, bandwidth=0.4)
    np.testing.assert_allclose(curve.get_ydata(), smoothed[:, 0].numpy(), atol=1e-12)
    # the heaviest point is drawn largest
    data = next(c for c in ax.collections if c.get_label() == "data, sized by weight")
    assert np.argmax(data.get_sizes()) == int(weights.argmax())


def test_panel_rejects_a_bad_bandwidth_by_name():
    with pytest.raises(ValueError, match="bandwidth"):
        nadaraya_watson_panel(Figure().subplots(), [0.0, 1.0], [0.0, 1.0], x_query=0.5,
                              bandwidth=0.0)
