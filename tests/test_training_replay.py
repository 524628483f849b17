"""The training-replay explorer: its page data are the training history, its HTML stands alone.

tests/test_site.py runs its script in a browser (every slider moved, the canvas must change,
the texts must be the ones computed here).
"""

import html as html_text
import json
import re

import numpy as np
import pytest
import torch

from kernelnotes import AttentionOnlyTransformer, RepeatedBlocks, train_transformer
from kernelnotes.explorers import Explorer
from kernelnotes.explorers import base as explorer_base
from kernelnotes.explorers.training_replay import TrainingReplayExplorer
from kernelnotes.toy import induction_targets


@pytest.fixture(scope="module")
def runs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    task = RepeatedBlocks(vocab_size=16, seq_len=12, block_lengths=(3, 5))
    settings = {"steps": 30, "batch_size": 8, "eval_size": 16, "record_every": 10}
    model = AttentionOnlyTransformer(16, 12, d_model=12, n_heads=(2, 1), d_head=6)
    control = AttentionOnlyTransformer(16, 12, d_model=12, n_layers=1, d_head=6)
    runs = train_transformer(model, task, **settings), train_transformer(control, task,
                                                                         **settings)
    torch.set_num_threads(threads)
    return runs


def replay(runs, **kwargs):
    return TrainingReplayExplorer(*runs, previous_token_head=(0, 1), induction_head=(1, 0),
                                  **kwargs)


def test_page_data_are_the_recorded_history(runs):
    history, control = runs
    data = replay(runs).page_data()
    assert data["steps"] == [0, 10, 20, 30]
    assert data["prev_score"] == pytest.approx(history.previous_token[:, 1].tolist(), abs=1e-4)
    assert data["prefix_score"] == pytest.approx(history.prefix_matching[:, 2].tolist(),
                                                 abs=1e-4)
    assert data["control_accuracy"] == pytest.approx(control.eval_accuracy.tolist(), abs=1e-4)
    assert data["labels"] == ["L0H1", "L1H0"]
    rows, cols = torch.tril_indices(12, 12)
    for k in range(4):
        for m, head in enumerate((1, 2)):
            expected = (100 * history.probe_weights[k, head][rows, cols]).round()
            assert data["maps"][k][m] == expected.long().tolist()
    targets = induction_targets(history.probe_tokens[None])[0].nonzero().tolist()
    assert data["targets"] == targets
    # the loss curves: a running mean of 20 steps, one point every 5 steps
    assert data["loss_steps"] == [20, 25, 30]
    assert data["loss"][0] == pytest.approx(history.losses[:20].mean().item(), rel=1e-3)


def test_texts_follow_the_slider(runs):
    history, control = runs
    explorer = replay(runs)
    assert explorer.texts()["step"] == "step 30"  # starts at the last checkpoint
    status = explorer.status(step=1)
    assert status.startswith("Step 10: held-out loss ")
    assert f"accuracy {history.eval_accuracy[1]:.2f} (control {control.eval_accuracy[1]:.2f})" \
        in status
    assert replay(runs, step_index=0).texts()["step"] == "step 0"


def test_html_stands_alone_and_is_deterministic(runs, monkeypatch):
    explorer = replay(runs)
    monkeypatch.setattr(explorer_base, "_renders", explorer_base.Counter())
    html = explorer._repr_html_()
    assert Explorer.registry["training-replay"] is TrainingReplayExplorer
    assert html_text.escape(explorer.description()) in html
    assert 'data-kind="training-replay"' in html
    assert not re.search(r"https?:|fetch\(|XMLHttpRequest|import\(|Math\.random|Date", html)
    assert len(html.encode()) < 40_000
    data = json.loads(re.search(r'class="kn-data">(.*?)</script>', html).group(1))
    assert data == json.loads(json.dumps(explorer.page_data()))
    monkeypatch.setattr(explorer_base, "_renders", explorer_base.Counter())
    assert explorer._repr_html_() == html
    assert explorer.figure_png(step=0) != explorer.figure_png(step=3)


def test_replay_rejects_bad_input(runs):
    history, control = runs
    with pytest.raises(TypeError, match="control"):
        TrainingReplayExplorer(history, None, previous_token_head=(0, 0),
                               induction_head=(1, 0))
    with pytest.raises(ValueError, match="induction_head"):
        TrainingReplayExplorer(history, control, previous_token_head=(0, 0),
                               induction_head=(1, 1))
    with pytest.raises(ValueError, match="step_index"):
        replay(runs, step_index=4)
    shorter = train_transformer(AttentionOnlyTransformer(16, 12, n_layers=1, d_model=12,
                                                         d_head=6),
                                RepeatedBlocks(16, 12, (3, 5)), steps=10, eval_size=4,
                                record_every=5)
    with pytest.raises(ValueError, match="same checkpoints"):
        TrainingReplayExplorer(history, shorter, previous_token_head=(0, 0),
                               induction_head=(1, 0))


@pytest.mark.parametrize("kwargs, name", [
    ({"previous_token_head": "L0H1"}, "previous_token_head"),
    ({"previous_token_head": (0, 1.0)}, "previous_token_head"),
    ({"induction_head": (1, 0, 0)}, "induction_head"),
    ({"induction_head": (True, 0)}, "induction_head"),
    ({"step_index": 1.0}, "step_index"),
    ({"step_index": "3"}, "step_index"),
])
def test_replay_refuses_wrong_types_with_a_type_error(runs, kwargs, name):
    args = {"previous_token_head": (0, 1), "induction_head": (1, 0), **kwargs}
    with pytest.raises(TypeError, match=name):
        TrainingReplayExplorer(*runs, **args)


def test_replay_takes_heads_as_any_pair_of_integers(runs):
    explorer = TrainingReplayExplorer(*runs, previous_token_head=[np.int64(0), 1],
                                      induction_head=(1, 0), step_index=np.int64(2))
    assert explorer.payload() == replay(runs, step_index=2).payload()


@pytest.mark.parametrize("width, stacked", [(320, True), (1280, False)])
def test_a_narrow_canvas_stacks_the_panels_and_still_follows_the_slider(runs, tmp_path,
                                                                         width, stacked):
    """At phone width the four panels go in one column on a canvas taller than wide (its
    12 px text stays legible); at desktop width the canvas keeps the stylesheet's 16:10.
    Either way a slider move redraws the canvas and rewrites the status line."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = "/usr/bin/chromium"
    explorer = replay(runs)
    page_file = tmp_path / "index.html"
    page_file.write_text("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                         "<title>t</title></head><body>" + explorer._repr_html_()
                         + "</body></html>", encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(page_file.as_uri())
            canvas = page.locator(".kn-explorer canvas")
            page.wait_for_function("c => c.clientWidth > 0 && c.width > 0",
                                   arg=canvas.element_handle())
            wide, tall = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")
            if stacked:
                assert tall > 2 * wide, (wide, tall)
            else:
                assert tall / wide == pytest.approx(10 / 16, abs=0.01), (wide, tall)
            before = canvas.evaluate("c => c.toDataURL()")
            page.locator("input[type=range]").press("Home")
            assert canvas.evaluate("c => c.toDataURL()") != before
            assert page.locator(".kn-status").inner_text() == explorer.status(step=0)
        finally:
            browser.close()
