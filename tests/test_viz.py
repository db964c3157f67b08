"""mmlab.viz: orientation of the similarity heatmap, titles and axis labels on every figure."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.offsetbox import AnnotationBbox
from PIL import Image

from mmlab import viz

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
IMAGES = [Image.new("RGB", (40, 30), c) for c in COLORS]
CAPTIONS = ["a red thing", "a green thing"]
SIM = torch.tensor([[0.91, 0.12], [0.33, 0.84], [0.05, 0.47]])  # 3 images x 2 captions, not symmetric


def data_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def assert_titled_and_labelled(fig):
    for ax in data_axes(fig):
        assert ax.get_title(), f"untitled axes in {fig}"
        assert ax.get_xlabel() or fig.get_supxlabel(), "x axis without label"
        assert ax.get_ylabel() or len(ax.get_yticks()) == 0, "y axis without label"
    fig.savefig(io.BytesIO(), format="png")  # renders without error (a closed figure's canvas.draw() does nothing)


def test_heatmap_rows_are_images_and_cells_hold_sim_i_j():
    fig = viz.similarity_heatmap(SIM, IMAGES, CAPTIONS, image_labels=["red", "green", "blue"])
    ax = data_axes(fig)[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["red", "green", "blue"]
    assert list(ax.get_yticks()) == [0, 1, 2]
    assert [t.get_text() for t in ax.get_xticklabels()] == CAPTIONS
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(i, j): f"{SIM[i, j]:.2f}" for i in range(3) for j in range(2)}
    thumbs = sorted((a for a in ax.artists if isinstance(a, AnnotationBbox)), key=lambda a: a.xy[1])
    assert [a.xy[1] for a in thumbs] == [0, 1, 2]
    for thumb, color in zip(thumbs, COLORS, strict=True):
        assert tuple(thumb.offsetbox.get_data()[0, 0, :3]) == color  # row i shows image i
    assert "images (rows)" in ax.get_title() and "captions (columns)" in ax.get_title()
    assert ax.get_ylabel().startswith("image") and ax.get_xlabel().startswith("caption")
    assert_titled_and_labelled(fig)


def test_heatmap_refuses_a_transposed_matrix():
    with pytest.raises(ValueError, match=r"pass sim.T"):
        viz.similarity_heatmap(SIM.T, IMAGES, CAPTIONS)


def test_patch_grid_counts_patches_and_shows_the_sequence():
    fig = viz.show_patch_grid(Image.new("RGB", (70, 50), (10, 20, 30)), 16)  # cropped to 64x48: 3x4 patches
    grid, sequence = data_axes(fig)
    assert "3x4 = 12 patches of 16x16" in grid.get_title()
    assert "sequence of 12 tokens" in sequence.get_title()
    assert [t.get_text() for t in sequence.get_yticklabels()] == ["0", "7"]  # 2 * 4 - 1 patches per line
    assert_titled_and_labelled(fig)


def test_patch_grid_wraps_long_sequences():
    fig = viz.show_patch_grid(Image.new("RGB", (224, 224)), 32, per_row=14)  # 49 patches, 14 per line
    sequence = data_axes(fig)[1]
    assert [t.get_text() for t in sequence.get_yticklabels()] == ["0", "14", "28", "42"]


def test_attention_overlay_one_map_and_per_head():
    one = viz.attention_overlay(IMAGES[0], torch.rand(7, 7), title="CLS attention")
    assert len(data_axes(one)) == 2 and one.get_suptitle() == "CLS attention"
    heads = viz.attention_overlay(IMAGES[0], torch.rand(4, 7, 7))
    assert [ax.get_title() for ax in data_axes(heads)] == ["image", "head 0", "head 1", "head 2", "head 3"]
    for fig in (one, heads):
        assert_titled_and_labelled(fig)


def test_embedding_map_labels_only_one_of_two_points_on_top_of_each_other():
    img = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.999, 0.001, 0.0]])  # images 0 and 2 nearly the same
    txt = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.5, 0.7], [0.1, 0.0, 0.99]])
    fig = viz.embedding_map(img, txt, ["first", "second", "twin of first"], ["p", "q", "r"], max_labels=3)
    labels = [t.get_text() for t in data_axes(fig)[0].texts if t.get_text()]
    assert "first" in labels and "second" in labels and "twin of first" not in labels


def test_attention_overlay_blocks_per_patch_and_a_shared_colour_scale():
    attn = torch.zeros(2, 2)
    attn[0, 1] = 1.0  # one hot patch, top right
    blocky = viz.attention_overlay(Image.new("RGB", (64, 64)), attn, smooth=False, vmin=0.0, vmax=2.0)
    overlay = data_axes(blocky)[1].get_images()[1]
    pixels = overlay.get_array()
    assert pixels.shape == (64, 64)
    assert set(np.unique(pixels)) == {0.0, 1.0}  # blocks, not a blurred blob
    assert pixels[:32, 32:].min() == 1.0 and pixels[32:, :].max() == 0.0
    assert overlay.get_clim() == (0.0, 2.0)
    smooth = viz.attention_overlay(Image.new("RGB", (64, 64)), attn)
    assert len(np.unique(data_axes(smooth)[1].get_images()[1].get_array())) > 2
    assert data_axes(smooth)[1].get_images()[1].get_clim() == (0.0, 1.0)


def test_embedding_map_shows_both_modalities_and_the_gap():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(4, 16, generator=g) + 2, torch.randn(4, 16, generator=g) - 2
    fig = viz.embedding_map(img, txt, ["a", "b", "c", "d"], ["w", "x", "y", "z"])
    ax = data_axes(fig)[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"image", "text", "mean image", "mean text"} <= set(legend)
    assert any(t.startswith(f"arrow between the means: modality gap {viz.modality_gap(img, txt):.2f}") for t in legend)
    assert ax.get_xlabel().startswith("principal component 1")
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["a", "b", "c", "d", "w", "x", "y", "z"]
    few = data_axes(viz.embedding_map(img, txt, ["a", "b", "c", "d"], ["w", "x", "y", "z"], max_labels=2))[0]
    assert [t.get_text() for t in few.texts if t.get_text()] == ["a", "d", "w", "z"]
    assert_titled_and_labelled(fig)


def test_modality_gap_of_identical_sets_is_zero():
    x = torch.randn(5, 8)
    assert viz.modality_gap(x, x) == pytest.approx(0.0, abs=1e-6)
    assert viz.modality_gap(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])) == pytest.approx(2**0.5)


def test_unnormalize_inverts_clip_normalization_and_permutes():
    rgb = torch.rand(3, 8, 6)
    mean, std = torch.tensor(viz.OPENAI_CLIP_MEAN).view(3, 1, 1), torch.tensor(viz.OPENAI_CLIP_STD).view(3, 1, 1)
    shown = viz.unnormalize(((rgb - mean) / std)[None])
    assert shown.shape == (8, 6, 3)
    torch.testing.assert_close(shown, rgb.permute(1, 2, 0))
    fig = viz.show_preprocessed(((rgb - mean) / std)[None], original=IMAGES[0], show_raw=True)
    titles = [ax.get_title() for ax in data_axes(fig)]
    w, h = IMAGES[0].size
    assert titles[0] == f"original: {w}x{h}" and "wrong" in titles[1] and "8x6" not in titles[2]
    assert titles[2] == "preprocessed: 6x8,\nun-normalized"  # width x height of what the model sees
    assert_titled_and_labelled(fig)


def test_bar_chart_puts_the_largest_on_top_with_values():
    fig = viz.bar_chart(np.array([0.2, 0.7, 0.1]), ["cat", "dog", "car"], title="Zero-shot", xlabel="probability",
                        ylabel="class")
    ax = data_axes(fig)[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["car", "cat", "dog"]  # bottom to top
    assert [t.get_text() for t in ax.texts] == ["0.10", "0.20", "0.70"]
    assert_titled_and_labelled(fig)


def test_show_images_keeps_a_caption_s_own_line_breaks_and_wraps_long_lines():
    fig = viz.show_images(IMAGES[:2], ["says: red circle\ntruth: red circle", "a " + "very " * 10 + "long caption"],
                          title="Gallery")
    first, second = (ax.get_title() for ax in data_axes(fig))
    assert first == "says: red circle\ntruth: red circle"
    assert second.count("\n") >= 1 and max(map(len, second.split("\n"))) <= 26


def test_show_images_and_loss_curve():
    fig = viz.show_images(IMAGES, ["r", "g", "b"], title="Gallery", xlabel="rank")
    assert fig.get_suptitle() == "Gallery" and fig.get_supxlabel() == "rank"
    assert_titled_and_labelled(fig)
    curve = viz.loss_curve([2.0, 1.5, 1.0, 0.8] * 5)
    ax = data_axes(curve)[0]
    assert ax.get_xlabel() == "training step" and len(ax.lines) == 2
    assert_titled_and_labelled(curve)


def test_position_similarity_has_one_titled_map_per_patch_and_rejects_a_class_token_row():
    pos = torch.randn(9, 4)  # a 3 x 3 grid
    fig = viz.position_similarity(pos, title="positions")
    maps = data_axes(fig)
    assert len(maps) == 9 and maps[4].get_title() == "1,1"
    assert np.isclose(maps[4].images[0].get_array()[1, 1], 1.0)  # each patch is most like itself
    assert_titled_and_labelled(fig)
    with pytest.raises(ValueError, match="class token"):
        viz.position_similarity(torch.randn(10, 4), title="with the class token")


def test_attention_masks_draw_each_mask_with_its_tokens_and_check_sizes():
    causal = torch.ones(3, 3).tril().bool()
    fig = viz.attention_masks({"causal": causal, "full": torch.ones(3, 3)}, ["q", "a", "b"], title="masks")
    first = data_axes(fig)[0]
    assert first.get_title() == "causal" and [t.get_text() for t in first.get_xticklabels()] == ["q", "a", "b"]
    assert np.array_equal(first.images[0].get_array(), causal.numpy())
    assert_titled_and_labelled(fig)
    with pytest.raises(ValueError, match="2 token labels"):
        viz.attention_masks({"causal": causal}, ["q", "a"], title="wrong")


def test_attention_masks_title_clears_the_panel_titles():
    """Lesson 03's three 7 x 7 masks: with square panels the figure's title once overlapped theirs."""
    masks = {name: torch.ones(7, 7, dtype=torch.bool) for name in ("ITC: unimodal", "ITM: bidirectional", "ITG")}
    fig = viz.attention_masks(masks, [f"token {k}" for k in range(7)], title="Q-Former stage 1: masks")
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # as Jupyter draws it
    (title,) = [t for t in fig.texts if t.get_text() == "Q-Former stage 1: masks"]
    panel_tops = [ax.title.get_window_extent().y1 for ax in data_axes(fig)]
    assert title.get_window_extent().y0 >= max(panel_tops), "the figure's title overlaps a panel's title"
