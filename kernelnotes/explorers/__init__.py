"""Interactive figures that need no Python kernel: self-contained HTML and JavaScript.

Each explorer is an object with ``_repr_html_``: displayed in a notebook, or rendered into
the static book, its output is one ``<div>`` that redraws the figure in the browser (see
:class:`Explorer` for what they share and how to add one). Python computes the same numbers
as the page (:meth:`NadarayaWatsonExplorer.predict`, :meth:`KernelSectionsExplorer.sections`,
:meth:`Explorer.texts`), so the tests can hold the JavaScript to them.
"""

from .base import Explorer, Slider, fill, nice_ticks
from .kernel_sections import KernelSectionsExplorer
from .nadaraya_watson import NadarayaWatsonExplorer
from .training_replay import TrainingReplayExplorer
from .widgets import widget

__all__ = [
    "Explorer",
    "KernelSectionsExplorer",
    "NadarayaWatsonExplorer",
    "Slider",
    "TrainingReplayExplorer",
    "fill",
    "nice_ticks",
    "widget",
]
