"""Replay a toy transformer's training: loss, head scores and two heads' attention per step."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy
import torch

from .._validation import check_index
from ..toy import TrainingHistory, induction_targets
from .base import Explorer, Slider, nice_ticks, round_values

__all__ = ["TrainingReplayExplorer"]

# Matplotlib's magma at 11 levels: the page and the still image colour a weight w by the
# level round(10 w), so both draw the same picture.
MAGMA = ["#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779", "#de4968",
         "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf"]
COLORS = {"model": "#1f77b4", "control": "#ff7f0e", "prefix": "#2ca02c", "prev": "#d62728",
          "target": "#2ca02c", "cursor": "#57606a", "text": "#1f2328"}
SMOOTHING = 20  # steps averaged for the training-loss curves
LOSS_EVERY = 5  # one point of the loss curves every this many steps


def _smoothed(losses: torch.Tensor) -> tuple[list[float], list[float]]:
    """Steps and the running mean of the loss over the last ``SMOOTHING`` steps, thinned."""
    width = min(SMOOTHING, len(losses))
    mean = torch.nn.functional.avg_pool1d(losses[None, None].double(), width, 1)[0, 0]
    steps = torch.arange(width, len(losses) + 1)[::LOSS_EVERY]
    return steps.tolist(), round_values(mean[::LOSS_EVERY], 4)


def _head_position(history: TrainingHistory, head, name: str) -> int:
    """The position of the ``(layer, head)`` pair ``head`` in ``history.heads``."""
    if (not isinstance(head, (tuple, list)) or len(head) != 2
            or not all(isinstance(i, Integral) and not isinstance(i, bool) for i in head)):
        raise TypeError(f"{name} must be a (layer, head) pair of integers, got {head!r}")
    head = tuple(int(i) for i in head)
    if head not in history.heads:
        raise ValueError(f"{name} must be one of the model's heads {history.heads}, "
                         f"got {head!r}")
    return history.heads.index(head)


class TrainingReplayExplorer(Explorer):
    """The training of :func:`kernelnotes.train_transformer`, replayed with a step slider.

    Left, the training loss of the model and of a control (for instance a 1-layer model
    trained the same way), and at each checkpoint the held-out accuracy of both and the
    scores of two heads; right, the attention weights of those two heads on the probe
    sequence at the chosen checkpoint, with circles on the keys an induction head should
    read (:func:`kernelnotes.induction_targets`). Every number comes from the histories.

    Parameters
    ----------
    history, control : :class:`~kernelnotes.toy.TrainingHistory` of the model and of the
        control, recorded at the same checkpoints.
    previous_token_head, induction_head : ``(layer, head)`` of the model's two heads to
        show, scored by their previous-token and prefix-matching scores respectively.
    step_index : the checkpoint the slider starts at (default: the last one).
    title : the figure's heading, also its accessible name.
    """

    kind = "training-replay"
    script = "training_replay.js"
    status_template = ("Step {step:d}: held-out loss {loss:.2f}; accuracy {accuracy:.2f} "
                       "(control {control:.2f}); previous-token score {prev:.2f}, "
                       "prefix-matching score {prefix:.2f}.")

    def __init__(self, history: TrainingHistory, control: TrainingHistory, *,
                 previous_token_head: tuple[int, int], induction_head: tuple[int, int],
                 step_index: int | None = None, title: str = "Replay the training"):
        for value, name in ((history, "history"), (control, "control")):
            if not isinstance(value, TrainingHistory):
                raise TypeError(f"{name} must be a TrainingHistory, got {type(value).__name__}")
        if not torch.equal(history.checkpoints, control.checkpoints):
            raise ValueError("history and control must be recorded at the same checkpoints")
        self.heads = {name: _head_position(history, head, name)
                      for head, name in ((previous_token_head, "previous_token_head"),
                                         (induction_head, "induction_head"))}
        checkpoints = len(history.checkpoints)
        self.step_index = (checkpoints - 1 if step_index is None
                           else check_index(step_index, "step_index", checkpoints))
        self.history, self.control = history, control
        self.labels = {name: f"L{layer}H{head}" for name, (layer, head) in
                       (("previous_token_head", previous_token_head),
                        ("induction_head", induction_head))}
        self.title = str(title)

    def _maps(self) -> torch.Tensor:
        """``(checkpoints, 2, n, n)`` weights of the two heads as levels 0..100 (percent)."""
        index = [self.heads["previous_token_head"], self.heads["induction_head"]]
        return (self.history.probe_weights[:, index] * 100).round()

    @classmethod
    def state(cls, data: dict, values: Mapping[str, float]) -> dict:
        i = round(float(values["step"]))
        return {"step": data["steps"][i], "loss": data["eval_loss"][i],
                "accuracy": data["accuracy"][i], "control": data["control_accuracy"][i],
                "prev": data["prev_score"][i], "prefix": data["prefix_score"][i]}

    # --- the page ----------------------------------------------------------------------

    def description(self) -> str:
        prev, induction = self.labels["previous_token_head"], self.labels["induction_head"]
        return (
            "Interactive chart replaying a training run. Top left: the training loss of the "
            "model (blue) and of the control (orange) against the step. Bottom left: at each "
            "saved checkpoint, the held-out accuracy of both, the prefix-matching score of "
            f"{induction} (green, dashed) and the previous-token score of {prev} (red, "
            "dotted). A vertical line marks the chosen step. Right: the attention weights "
            f"of {prev} (top) and {induction} (bottom) on one held-out sequence at that "
            "step, query rows against key columns, brighter for more weight, with green "
            "circles on the keys right after an earlier copy of each query's token. A "
            "slider chooses the checkpoint."
        )

    def sliders(self) -> list[Slider]:
        return [Slider("step", "checkpoint", "step {step:d}", 0,
                       len(self.history.checkpoints) - 1, 1, self.step_index)]

    def payload(self) -> dict:
        loss_steps, loss = _smoothed(self.history.losses)
        _, control_loss = _smoothed(self.control.losses)
        maps = self._maps()
        n = maps.shape[-1]
        rows, cols = torch.tril_indices(n, n)
        targets = induction_targets(self.history.probe_tokens[None])[0].nonzero()
        top = max(max(loss), max(control_loss))
        return {
            "steps": self.history.checkpoints.tolist(),
            "eval_loss": round_values(self.history.eval_loss, 4),
            "accuracy": round_values(self.history.eval_accuracy, 4),
            "control_accuracy": round_values(self.control.eval_accuracy, 4),
            "prev_score": round_values(
                self.history.previous_token[:, self.heads["previous_token_head"]], 4),
            "prefix_score": round_values(
                self.history.prefix_matching[:, self.heads["induction_head"]], 4),
            "loss_steps": loss_steps,
            "loss": loss,
            "control_loss": control_loss,
            "loss_top": round_values([top * 1.05], 3)[0],
            "loss_ticks": nice_ticks(0, top, 5),
            "step_ticks": nice_ticks(0, self.history.checkpoints[-1].item(), 4),
            "n": n,
            # the causal (lower) triangle of each map, row by row, as integer percents
            "maps": [[[int(v) for v in m[rows, cols].tolist()] for m in checkpoint]
                     for checkpoint in maps],
            "targets": targets.tolist(),
            "labels": [self.labels["previous_token_head"], self.labels["induction_head"]],
            "palette": MAGMA,
            "colors": COLORS,
            # the shared frame is only the white background here: the panels draw their own
            "domain": [0, 1], "ylim": [0, 1], "xticks": [], "yticks": [],
        }

    def draw(self, ax, values: Mapping[str, float]) -> None:
        from matplotlib.colors import ListedColormap

        i = round(values["step"])
        data = self.payload()
        # four panels inside the one axes the figure provides, laid out as on the page
        ax.set_axis_off()
        loss_ax = ax.inset_axes([0.06, 0.56, 0.52, 0.42])
        score_ax = ax.inset_axes([0.06, 0.04, 0.52, 0.42])
        loss_ax.plot(data["loss_steps"], data["loss"], color=COLORS["model"], label="model")
        loss_ax.plot(data["loss_steps"], data["control_loss"], color=COLORS["control"],
                     label="control")
        loss_ax.set(ylim=(0, data["loss_top"]), xticks=[])
        loss_ax.set_title("training loss", fontsize=8, loc="left")
        loss_ax.legend(fontsize=7, frameon=False)
        steps = data["steps"]
        curves = (("accuracy", "-", "model"), ("control_accuracy", "-", "control"),
                  ("prefix_score", "--", "prefix"), ("prev_score", ":", "prev"))
        for key, style, color in curves:
            score_ax.plot(steps, data[key], style, color=COLORS[color])
        score_ax.set(ylim=(0, 1.02))
        score_ax.set_title("accuracy, scores", fontsize=8, loc="left")
        for panel in (loss_ax, score_ax):
            panel.axvline(steps[i], color=COLORS["cursor"], linewidth=1)
            panel.tick_params(labelsize=7)
        maps = (self._maps()[i] / 100).numpy()
        query, key = torch.tensor(data["targets"]).reshape(-1, 2).T.numpy()
        # the causal triangle only: above the diagonal is masked, not zero weight
        upper = torch.ones(maps.shape[-2:]).bool().triu(1).numpy()
        for row, label in enumerate(data["labels"]):
            heat = ax.inset_axes([0.66, 0.54 - 0.5 * row, 0.33, 0.40])
            heat.imshow(numpy.ma.masked_array(maps[row], upper), vmin=-0.05, vmax=1.05,
                        cmap=ListedColormap(MAGMA).with_extremes(bad="white"))
            heat.scatter(key, query, s=10, facecolors="none", edgecolors=COLORS["target"])
            heat.set_title(f"{label}, step {steps[i]}", fontsize=8, loc="left")
            heat.set_xticks([])
            heat.set_yticks([])

    def __repr__(self) -> str:
        return (f"TrainingReplayExplorer(checkpoints={len(self.history.checkpoints)}, "
                f"heads={self.labels}): {self.description()}")
