"""Figures for the lessons: patch grids, similarity heatmaps with images on the axes, attention maps,
position-embedding similarity, attention masks, embedding maps, preprocessed pixels, bar charts and loss curves.

Every function returns a `matplotlib.figure.Figure` with a title and labelled axes. A notebook shows
it once, as the cell's value (or with `display(fig)`); a script saves it with `fig.savefig(path)`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from PIL import Image
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from mmlab.data.image_io import load_image
from mmlab.vit import patchify


def _figure(width: float, height: float, dpi: float | None = None, title: str | None = None) -> Figure:
    """A new figure, made through pyplot (which sets up Jupyter's inline display) but closed there,
    so that Jupyter shows it once, as the returned value, and not a second time at the end of the cell.
    A figure of several panels gets `title` above them, in bold so that it stands apart from theirs."""
    fig = plt.figure(figsize=(width, height), dpi=dpi, layout="constrained")
    plt.close(fig)
    if title is not None:
        fig.suptitle(title, fontweight="bold")
    return fig


def _as_array(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _pixels(image) -> np.ndarray:
    """Any image `load_image` reads, as a (H, W, 3) float array in 0..1."""
    return np.asarray(load_image(image), dtype=np.float32) / 255


def _wrap(text: str, width: int) -> str:
    """`text` wrapped to lines of at most `width` characters; its own line breaks are kept."""
    return "\n".join(wrapped for line in text.split("\n") for wrapped in textwrap.wrap(line, width) or [""])


# --- patches -------------------------------------------------------------------------------------


def show_patch_grid(image, patch_size: int, *, size: int | None = None, per_row: int | None = None) -> Figure:
    """Left: the image with its patch grid. Right: the patches in the order the encoder reads them.

    size: resize the image to size x size first (e.g. 224, as CLIP's processor does); by default
    it is cropped to a multiple of the patch size. per_row: patches per line of the sequence; by
    default one less than two grid rows, so the lines do not line up with the image's rows: the
    encoder gets a 1-D sequence, and only the position embeddings tell it where a patch was.
    """
    pil = load_image(image)
    if size is not None:
        pil = pil.resize((size, size), Image.Resampling.BICUBIC)
    w, h = (pil.width // patch_size) * patch_size, (pil.height // patch_size) * patch_size
    if w == 0 or h == 0:
        raise ValueError(f"The image ({pil.width}x{pil.height}) is smaller than one {patch_size}-pixel patch.")
    pixels = _pixels(pil.crop((0, 0, w, h)))  # (H, W, 3) in 0..1
    gh, gw, p = h // patch_size, w // patch_size, patch_size
    patches = patchify(torch.from_numpy(pixels).permute(2, 0, 1)[None], p)[0]  # (N, P*P*3)
    n = patches.shape[0]
    per_row = per_row or min(n, max(1, 2 * gw - 1))
    rows, gap = math.ceil(n / per_row), max(1, p // 8)
    canvas = np.ones((rows * (p + gap) - gap, per_row * (p + gap) - gap, 3), np.float32)  # white gaps
    for k, patch in enumerate(patches.reshape(n, p, p, 3).numpy()):
        r, c = divmod(k, per_row)
        canvas[r * (p + gap) : r * (p + gap) + p, c * (p + gap) : c * (p + gap) + p] = patch

    fig = _figure(11, 4.2, dpi=72)  # photographs make large PNGs: keep the notebook small
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    left.imshow(pixels)
    left.set_xticks(np.arange(0, w + 1, p * max(1, gw // 7)))
    left.set_yticks(np.arange(0, h + 1, p * max(1, gh // 7)))
    for x in range(0, w + 1, p):
        left.axvline(x - 0.5, color="white", linewidth=0.8)
    for y in range(0, h + 1, p):
        left.axhline(y - 0.5, color="white", linewidth=0.8)
    left.set(title=f"{w}x{h} image cut into {gh}x{gw} = {n} patches of {p}x{p}", xlabel="x (pixels)",
             ylabel="y (pixels)")
    right.imshow(canvas)
    step = max(1, per_row // 8)
    right.set_xticks([c * (p + gap) + p / 2 for c in range(0, per_row, step)], [f"+{c}" for c in range(0, per_row, step)])
    right.set_yticks([r * (p + gap) + p / 2 for r in range(rows)], [str(r * per_row) for r in range(rows)])
    right.set(title=f"The same patches as a sequence of {n} tokens (read row by row)",
              xlabel="offset within the line", ylabel="sequence position of the line's first patch")
    return fig


# --- similarity ----------------------------------------------------------------------------------


def similarity_heatmap(
    sim,
    images: Sequence,
    captions: Sequence[str],
    *,
    image_labels: Sequence[str] | None = None,
    title: str | None = None,
    value_label: str = "cosine similarity",
    decimals: int = 2,
    thumb_px: int = 64,
) -> Figure:
    """Heatmap of sim[i, j] = image i vs caption j: one row per image (thumbnail at the left), one column
    per caption, each cell annotated with its value rounded to `decimals`.

    The row and column labels come from the matrix's own axes: images must match its rows and
    captions its columns (pass `sim.T` if you computed caption x image).
    """
    values = _as_array(sim)
    n_img, n_cap = values.shape if values.ndim == 2 else (None, None)
    if values.ndim != 2 or n_img != len(images) or n_cap != len(captions):
        raise ValueError(
            f"sim has shape {values.shape} but there are {len(images)} images and {len(captions)} captions: "
            "rows must be images and columns captions. If you computed captions x images, pass sim.T."
        )
    labels = list(image_labels) if image_labels is not None else [f"image {i}" for i in range(n_img)]
    fig = _figure(2.2 + 2.4 * n_cap, 1.2 + 1.1 * n_img)
    ax = fig.add_subplot()
    mesh = ax.imshow(values, cmap="viridis", aspect="auto")
    fig.colorbar(mesh, ax=ax, label=value_label)
    middle = (values.max() + values.min()) / 2
    for i in range(n_img):
        for j in range(n_cap):
            color = "black" if values[i, j] > middle else "white"
            ax.text(j, i, f"{values[i, j]:.{decimals}f}", ha="center", va="center", color=color, fontsize=11)
    for i, image in enumerate(images):
        thumb = load_image(image)
        thumb.thumbnail((thumb_px, thumb_px))
        box = AnnotationBbox(OffsetImage(np.asarray(thumb), zoom=1), (0, i), xycoords=("axes fraction", "data"),
                             xybox=(-thumb_px / 2 - 4, 0), boxcoords="offset points", frameon=False)
        box.set_gid(f"thumbnail {i}")
        ax.add_artist(box)
    ax.set_yticks(range(n_img), labels)
    ax.tick_params(axis="y", pad=thumb_px + 10)  # labels to the left of the thumbnails
    ax.set_xticks(range(n_cap), [_wrap(c, 20) for c in captions])
    ax.set(xlabel="caption (text embedding)", ylabel="image (image embedding)",
           title=title or f"{value_label.capitalize()}: images (rows) x captions (columns)")
    return fig


def bar_chart(values, labels: Sequence[str], *, title: str, xlabel: str, ylabel: str, decimals: int = 2) -> Figure:
    """Horizontal bars, largest on top, each annotated with its value (e.g. zero-shot probabilities)."""
    v = _as_array(values).reshape(-1)
    if len(v) != len(labels):
        raise ValueError(f"{len(v)} values but {len(labels)} labels.")
    order = np.argsort(v)  # barh draws bottom-up: the largest ends on top
    fig = _figure(7, 0.6 + 0.45 * len(v))
    ax = fig.add_subplot()
    bars = ax.barh([_wrap(labels[k], 40) for k in order], v[order], color="tab:blue")
    ax.bar_label(bars, [f"{x:.{decimals}f}" for x in v[order]], padding=3)
    ax.set_xlim(0, max(1.0, float(v.max()) * 1.15) if v.min() >= 0 else None)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return fig


# --- attention -----------------------------------------------------------------------------------


def attention_overlay(image, attn_map, *, title: str = "Attention over the image", head_labels=None,
                      alpha: float = 0.6, cmap: str = "inferno", smooth: bool = True,
                      vmin: float | None = None, vmax: float | None = None) -> Figure:
    """The image, then the attention map(s) upsampled to it and laid over it.

    attn_map: (g, g) one map, or (heads, g, g) one panel per head; values as given (see the colour bar).
    smooth=False upsamples by repeating each patch's value (blocks, one per patch) instead of bilinearly;
    vmin/vmax fix the colour scale (default: the maps' own range), so that figures can share one.
    """
    maps = _as_array(attn_map)
    maps = maps[None] if maps.ndim == 2 else maps
    if maps.ndim != 3:
        raise ValueError(f"attn_map must be (g, g) or (heads, g, g), not {maps.shape}.")
    pixels = _pixels(image)
    h, w = pixels.shape[:2]
    resize = {"mode": "bilinear", "align_corners": False} if smooth else {"mode": "nearest"}
    up = F.interpolate(torch.from_numpy(maps)[:, None].float(), size=(h, w), **resize)
    up = up[:, 0].numpy()  # (heads, H, W)
    labels = list(head_labels) if head_labels is not None else (
        ["attention"] if len(maps) == 1 else [f"head {k}" for k in range(len(maps))])
    panels = len(maps) + 1
    cols = min(panels, 5)
    rows = math.ceil(panels / cols)
    fig = _figure(3.0 * cols + 0.8, 3.0 * rows + 0.5, title=title)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    axes[0].imshow(pixels)
    axes[0].set(title="image", xlabel="x (pixels)", ylabel="y (pixels)")
    vmin = float(maps.min()) if vmin is None else vmin
    vmax = float(maps.max()) if vmax is None else vmax
    for ax, m, label in zip(axes[1:], up, labels, strict=False):
        ax.imshow(pixels)
        mesh = ax.imshow(m, alpha=alpha, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set(title=label, xlabel="x (pixels)", ylabel="y (pixels)")
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=axes[1:panels].tolist(), label="attention weight", shrink=0.8)
    return fig


def position_similarity(position_embeddings, *, title: str) -> Figure:
    """Cosine similarity of each patch's position embedding with every other's, one small map per patch
    laid out on the patch grid (as in figure 7 of the ViT paper).

    position_embeddings: (g * g, D), the patches' embeddings in reading order (class token left out).
    """
    pos = torch.as_tensor(_as_array(position_embeddings))
    g = math.isqrt(pos.shape[0])
    if pos.ndim != 2 or g * g != pos.shape[0]:
        raise ValueError(f"position_embeddings must be (g * g, D) for a g x g patch grid, not {tuple(pos.shape)}; "
                         "leave out the class token's row (position 0).")
    unit = F.normalize(pos, dim=-1)
    sim = (unit @ unit.T).reshape(g * g, g, g).numpy()  # (patch, row, column)
    fig = _figure(0.9 * g + 1.2, 0.9 * g + 0.6, title=title)
    axes = np.atleast_1d(fig.subplots(g, g)).reshape(-1)
    for k, ax in enumerate(axes):
        mesh = ax.imshow(sim[k], cmap="viridis", vmin=-1, vmax=1)
        ax.set_title(f"{k // g},{k % g}", fontsize=7, pad=2)
        ax.set(xticks=[], yticks=[])
    fig.colorbar(mesh, ax=axes.tolist(), label="cosine similarity", shrink=0.8)
    fig.supxlabel("input patch column (each map: its similarity with every patch)")
    fig.supylabel("input patch row")
    return fig


def attention_masks(masks: dict, token_labels: Sequence[str], *, title: str) -> Figure:
    """Self-attention masks side by side: cell (i, j) is light where token i may attend to token j.

    masks: panel title -> (T, T) boolean mask; token_labels: the T tokens, in order.
    """
    fig = _figure(3.2 * len(masks) + 0.4, 3.6, title=title)
    fig.set_layout_engine("compressed")  # square panels: "constrained" lets the title overlap theirs
    axes = np.atleast_1d(fig.subplots(1, len(masks)))
    for ax, (name, mask) in zip(axes, masks.items(), strict=True):
        m = _as_array(mask)
        if m.shape != (len(token_labels), len(token_labels)):
            raise ValueError(f"mask {name!r} is {m.shape}, but there are {len(token_labels)} token labels.")
        ax.imshow(m, cmap="gray", vmin=0, vmax=1)
        ticks = range(len(token_labels))
        ax.set_xticks(ticks, token_labels, rotation=90, fontsize=7)
        ax.set_yticks(ticks, token_labels, fontsize=7)
        ax.set(title=name, xlabel="may attend to (key)", ylabel="token (query)")
    return fig


# --- embeddings ----------------------------------------------------------------------------------


def modality_gap(image_emb, text_emb) -> float:
    """Distance between the mean unit-length image embedding and the mean unit-length text embedding."""
    img = F.normalize(torch.as_tensor(_as_array(image_emb)), dim=-1).mean(0)
    txt = F.normalize(torch.as_tensor(_as_array(text_emb)), dim=-1).mean(0)
    return float((img - txt).norm())


def embedding_map(image_emb, text_emb, image_labels: Sequence[str] | None = None,
                  text_labels: Sequence[str] | None = None, *, title: str = "Images and texts in one embedding space",
                  connect_pairs: bool = True, label_chars: int = 24, max_labels: int = 10) -> Figure:
    """A 2-D PCA map of unit-length image (circles) and text (triangles) embeddings, both fitted together.

    The crosses mark each modality's mean, the arrow between them is the modality gap (its length in
    the full space is in the legend). With `connect_pairs`, image i and text i are joined by a dotted line.
    At most `max_labels` points per modality are labelled (evenly spread), and none close to a label already
    placed, so the labels stay readable.
    """
    img = F.normalize(torch.as_tensor(_as_array(image_emb)), dim=-1)
    txt = F.normalize(torch.as_tensor(_as_array(text_emb)), dim=-1)
    both = torch.cat([img, txt])  # (Ni + Nt, D)
    centered = both - both.mean(0)
    _, s, v = torch.linalg.svd(centered, full_matrices=False)
    xy = (centered @ v[:2].T).numpy()  # (Ni + Nt, 2)
    share = (s**2 / (s**2).sum()).numpy()
    pi, pt = xy[: len(img)], xy[len(img) :]
    fig = _figure(10.5, 6.5)
    ax = fig.add_subplot()
    if connect_pairs and len(pi) == len(pt):
        for a, b in zip(pi, pt, strict=True):
            ax.plot([a[0], b[0]], [a[1], b[1]], ":", color="grey", linewidth=0.8)
    ax.scatter(pi[:, 0], pi[:, 1], marker="o", s=60, color="tab:blue", label="image")
    ax.scatter(pt[:, 0], pt[:, 1], marker="^", s=70, color="tab:orange", label="text")
    span = np.ptp(xy, axis=0).clip(min=1e-9)  # to measure closeness in the map's own proportions
    placed: list[np.ndarray] = []
    for points, labels in ((pi, image_labels), (pt, text_labels)):
        labels = list(labels or [])
        for k in np.unique(np.linspace(0, len(labels) - 1, min(max_labels, len(labels))).round().astype(int)):
            (x, y), label = points[k], labels[k]
            if any(abs(dx) < 0.25 and abs(dy) < 0.05 for dx, dy in ((points[k] - q) / span for q in placed)):
                continue  # a label already stands there (labels run right): skip this one rather than overprint
            placed.append(points[k])
            ax.annotate(textwrap.shorten(label, label_chars, placeholder="…"), (x, y), fontsize=8,
                        xytext=(4, 3), textcoords="offset points")
    ci, ct = pi.mean(0), pt.mean(0)
    ax.scatter(*ci, marker="X", s=160, color="navy", label="mean image")
    ax.scatter(*ct, marker="X", s=160, color="darkred", label="mean text")
    gap = modality_gap(img, txt)
    ax.annotate("", xy=ct, xytext=ci, arrowprops={"arrowstyle": "<->", "color": "black", "linewidth": 1.5})
    ax.plot([], [], color="black", label=f"arrow between the means: modality gap {gap:.2f} (full space)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)  # beside the map, covering no point
    ax.set(title=title, xlabel=f"principal component 1 ({share[0]:.1%} of variance)",
           ylabel=f"principal component 2 ({share[1]:.1%} of variance)")
    return fig


# --- pixels and training -------------------------------------------------------------------------


def unnormalize(pixel_values: torch.Tensor, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD) -> torch.Tensor:
    """Undo the processor's normalization: (1, 3, H, W) or (3, H, W) -> (H, W, 3) in 0..1, ready for imshow."""
    x = pixel_values[0] if pixel_values.ndim == 4 else pixel_values  # (3, H, W)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"Expected pixel_values (1, 3, H, W) or (3, H, W), not {tuple(pixel_values.shape)}.")
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x.detach().float().cpu() * std_t + mean_t).clamp(0, 1).permute(1, 2, 0)  # (H, W, 3)


def show_preprocessed(pixel_values: torch.Tensor, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, *,
                      original=None, show_raw: bool = False, title: str = "What the model sees") -> Figure:
    """The processor's output un-normalized (pixel * std + mean) and shown height x width x channels,
    next to the original image when given; with `show_raw`, also the normalized values shown as they
    are (clipped to 0-1 by imshow): the mistake un-normalizing avoids."""
    shown = unnormalize(pixel_values, mean, std).numpy()
    panels = []
    if original is not None:
        before = _pixels(original)
        panels.append((f"original: {before.shape[1]}x{before.shape[0]}", before))
    if show_raw:
        raw = unnormalize(pixel_values, (0, 0, 0), (1, 1, 1)).numpy()  # only clipped and permuted
        panels.append(("normalized values,\nshown as is (wrong)", raw))
    panels.append((f"preprocessed: {shown.shape[1]}x{shown.shape[0]},\nun-normalized", shown))
    fig = _figure(4.2 * len(panels), 4.4, title=title)
    for ax, (label, pixels) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True):
        ax.imshow(pixels)
        ax.set(title=label, xlabel="x (pixels)", ylabel="y (pixels)")
    return fig


def show_images(images: Sequence, captions: Sequence[str], *, title: str, xlabel: str = "",
                per_row: int = 5) -> Figure:
    """A row (or grid) of images, each with its caption above it (search results, galleries)."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions.")
    cols = min(per_row, len(images))
    rows = math.ceil(len(images) / cols)
    fig = _figure(2.4 * cols, 2.6 * rows + 0.4, title=title)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax, image, caption in zip(axes, images, captions, strict=False):
        ax.imshow(_pixels(image))
        ax.set_title(_wrap(caption, 26), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(images) :]:
        ax.set_visible(False)
    fig.supxlabel(xlabel or "images")
    return fig


def loss_curve(losses: Sequence[float], *, title: str = "Training loss", smooth: int = 10) -> Figure:
    """Loss per step, with a moving average over `smooth` steps."""
    y = np.asarray(losses, dtype=float)
    fig = _figure(7, 3.6)
    ax = fig.add_subplot()
    ax.plot(y, color="tab:blue", alpha=0.35, label="per step")
    if len(y) >= smooth > 1:
        avg = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(smooth - 1, len(y)), avg, color="tab:blue", label=f"mean of {smooth} steps")
    ax.legend()
    ax.set(title=title, xlabel="training step", ylabel="cross-entropy loss")
    return fig
