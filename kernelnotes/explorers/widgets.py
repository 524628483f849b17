"""Any explorer driven from Python by ipywidgets, for front ends that run no output scripts.

The HTML form of an explorer needs a front end that runs the scripts of trusted outputs
(JupyterLab, Notebook 7). Where that is not the case, :func:`widget` returns an ipywidgets
box whose sliders redraw the explorer's matplotlib figure (:meth:`Explorer.figure_png`) in
the kernel, with the same texts as the page. Its callbacks are Python, so on a static page
it would show nothing: the book uses the HTML form. ipywidgets is imported only here.
"""

from __future__ import annotations

from .base import Explorer

__all__ = ["widget"]


def widget(explorer: Explorer):
    """An ipywidgets ``VBox``: one slider and readout per control, the image, the status."""
    if not isinstance(explorer, Explorer):
        raise TypeError(f"explorer must be a kernelnotes explorer, got "
                        f"{type(explorer).__name__}")
    import ipywidgets

    specs = explorer.sliders()
    sliders = [ipywidgets.FloatSlider(value=s.value, min=s.lo, max=s.hi, step=s.step,
                                      description=s.label, readout=False,
                                      continuous_update=False) for s in specs]
    readouts = [ipywidgets.Label() for _ in specs]
    image = ipywidgets.Image(format="png")
    status = ipywidgets.Label()

    def redraw(_change=None):
        values = {spec.name: slider.value for spec, slider in zip(specs, sliders, strict=True)}
        texts = explorer.texts(**values)
        image.value = explorer.figure_png(**values)
        for spec, readout in zip(specs, readouts, strict=True):
            readout.value = texts[spec.name]
        status.value = texts["status"]

    for slider in sliders:
        slider.observe(redraw, names="value")
    redraw()
    controls = [ipywidgets.HBox([slider, readout])
                for slider, readout in zip(sliders, readouts, strict=True)]
    return ipywidgets.VBox([ipywidgets.HBox(controls), image, status])
