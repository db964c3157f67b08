"""Load any image a learner may hand us as a plain RGB `PIL.Image`.

Sources: a file path, an http(s) URL (hub mode: the only mode with internet), the bytes of an
image file (an upload), a NumPy array (H, W) or (H, W, C), a torch tensor (C, H, W) or (H, W), or
a PIL image. Every mode PIL knows
becomes RGB the way a person would expect: transparency on white, 16-bit greys scaled (not
clipped), CMYK converted; EXIF orientation is applied. Anything that cannot be read raises
`ImageLoadError` saying which image, what was wrong and what to do.
"""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold (about 9459 x 9459)
DEFAULT_MAX_BYTES = 50 * 2**20  # 50 MiB per download
DEFAULT_TIMEOUT = 10.0  # seconds for a whole download
WHITE = (255, 255, 255)
# Wikimedia, among others, refuses requests without a User-Agent that names the program and how to reach it.
USER_AGENT = "mmlab/0.1 (teaching workbook; https://github.com/mmlab-workbook/mmlab) Python-urllib"


class ImageLoadError(ValueError):
    """An image could not be loaded; the message names it, says what was wrong and what to do."""


def load_image(
    source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Return `source` as an RGB image, fully loaded in memory.

    max_pixels: refuse images with more pixels than this (decompression bombs, giant scans).
    timeout: seconds allowed for a whole download (URLs only).
    max_bytes: refuse downloads or files larger than this.
    """
    if isinstance(source, Image.Image):
        return _finish(source, "the PIL image", max_pixels)
    if isinstance(source, np.ndarray):
        return _finish(from_array(source), "the NumPy array", max_pixels)
    if isinstance(source, torch.Tensor):
        return _finish(from_tensor(source), "the tensor", max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):  # e.g. a file uploaded in a notebook widget
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageLoadError(f"The image data is {len(data) / 2**20:.1f} MiB, above the limit of "
                                 f"{max_bytes / 2**20:.1f} MiB. Use a smaller image, or pass a larger max_bytes=.")
        return _decode(data, "the uploaded file", max_pixels)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return _decode(_download(source, timeout, max_bytes), source, max_pixels)
    if isinstance(source, (str, Path)):
        return _decode(_read_file(Path(source), max_bytes), str(source), max_pixels)
    raise ImageLoadError(
        f"Cannot load an image from a {type(source).__name__}. Pass a file path, an http(s) URL, the bytes "
        "of an image file, a PIL image, a NumPy array (H, W[, C]) or a torch tensor (C, H, W)."
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB: transparency composited on white, high bit depths scaled to 0-255."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(image), mode)).convert("RGB")
    try:
        return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, HSV, ...
    except ValueError as err:
        raise ImageLoadError(f"Cannot convert an image in PIL mode {mode!r} to RGB ({err}). "
                             "Convert it to RGB with an image editor, then load it again.") from None


def from_array(array: np.ndarray) -> Image.Image:
    """A NumPy image (H, W) or (H, W, 1|3|4), uint8 0-255 or float 0-1, as a PIL image."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        hint = " It looks channels-first: use array.transpose(1, 2, 0)." if a.ndim == 3 and a.shape[0] in (1, 3, 4) else ""
        raise ImageLoadError(f"The array has shape {a.shape}; expected (H, W) or (H, W, 3|4).{hint}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if np.isnan(a).any() or lo < -1e-3 or hi > 1 + 1e-3:
            raise ImageLoadError(
                f"The float array has values from {lo:.3g} to {hi:.3g}; expected 0-1. If these are normalized "
                "model inputs, un-normalize them first (x * std + mean); if they are 0-255, use .astype('uint8')."
            )
        a = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    elif a.dtype == np.uint16:
        a = (a // 257).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 255:
            raise ImageLoadError(f"The {a.dtype} array has values from {a.min()} to {a.max()}; expected 0-255.")
        a = a.astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a))


def from_tensor(tensor) -> Image.Image:
    """A torch image (C, H, W), (1, C, H, W) or (H, W), uint8 or float 0-1, as a PIL image."""
    t = tensor.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 3:
        if t.shape[0] not in (1, 3, 4):
            hint = " It looks channels-last: use tensor.permute(2, 0, 1)." if t.shape[-1] in (1, 3, 4) else ""
            raise ImageLoadError(f"The tensor has shape {tuple(t.shape)}; expected (C, H, W) with C = 1, 3 or 4.{hint}")
        t = t.permute(1, 2, 0)  # (H, W, C)
    elif t.ndim != 2:
        raise ImageLoadError(f"The tensor has shape {tuple(t.shape)}; expected (C, H, W) or (H, W).")
    if t.dtype.is_floating_point:
        t = t.float()
    return from_array(t.numpy())


# --- files and downloads -------------------------------------------------------------------------


def _read_file(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if not path.is_file():
        raise ImageLoadError(f"{path} is not a file. Pass the path of an image file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageLoadError(f"{path} is {size / 2**20:.1f} MiB, above the limit of {max_bytes / 2**20:.1f} MiB. "
                             "Shrink the image, or pass a larger max_bytes= if you trust it.")
    return path.read_bytes()


def _download(url: str, timeout: float, max_bytes: int) -> bytes:
    """Fetch `url` with a deadline for the whole transfer and a size limit, or raise ImageLoadError."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise _too_large(url, max_bytes)
            chunks, total = [], 0
            while chunk := response.read1(64 * 1024):  # returns after each network read
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(url, max_bytes)
                if time.monotonic() > deadline:
                    raise TimeoutError
            return b"".join(chunks)
    except urllib.error.HTTPError as err:
        raise ImageLoadError(f"{url}: the server answered HTTP {err.code} ({err.reason}). The link may be dead: "
                             "check it in a browser, or download the image and pass its file path.") from None
    except (TimeoutError, OSError) as err:  # socket timeouts are OSErrors too, as are URLErrors
        what = "no complete answer" if isinstance(err, TimeoutError) or "timed out" in str(err) else str(err)
        raise ImageLoadError(f"{url}: {what} within {timeout:g} s. Without internet (offline mode) "
                             "use a local file; otherwise retry, or pass a larger timeout=.") from None


def _too_large(url: str, max_bytes: int) -> ImageLoadError:
    return ImageLoadError(f"{url} is larger than {max_bytes / 2**20:.1f} MiB. Pass a larger max_bytes= if you "
                          "trust it, or use a smaller image.")


# --- decoding ------------------------------------------------------------------------------------


def _decode(data: bytes, name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name} is not an image PIL can read ({len(data)} bytes starting {data[:8]!r}). "
                             "Check that it is a PNG, JPEG, GIF, BMP, TIFF or WebP file.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(f"{name} was refused as a possible decompression bomb: {err} "
                             "Shrink it first if you trust it.") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{name} could not be read: {err}. Download or export it again.") from None
    return _finish(image, name, max_pixels)


def _finish(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    """Check the size, decode the pixels, apply EXIF orientation, convert to RGB."""
    _check_pixels(image, name, max_pixels)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # the way the camera was held
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{name} could not be decoded: {err}. The file may be truncated or corrupt: "
                             "download or export it again.") from None
    return to_rgb(image)


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageLoadError(f"{name} has {width} x {height} = {width * height:,} pixels, more than "
                             f"max_pixels={max_pixels:,} (a decompression bomb or a giant scan). Shrink it "
                             "first, or pass a larger max_pixels= if you trust it.")
    if width == 0 or height == 0:
        raise ImageLoadError(f"{name} is empty ({width} x {height} pixels).")
    return image


def _to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float grey image to 0-255.

    I;16 holds 0-65535. Mode "I" (PIL's 32-bit integers, also used for 16-bit PNGs) is read as 16-bit
    when its values exceed 255 and as 8-bit otherwise; mode "F" as 0-1 when it fits, else 0-255.
    """
    a = a.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and a.max() > 255):
        a = a / 257.0
        if a.max() > 255.0:
            raise ImageLoadError(f"The {mode} image holds values above 65535; scale it to 0-255 first.")
    elif mode == "F" and a.min() >= 0 and a.max() <= 1:
        a = a * 255.0
    return np.round(np.clip(a, 0, 255)).astype(np.uint8)
