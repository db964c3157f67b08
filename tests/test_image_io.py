"""mmlab.data.image_io.load_image: every source, every PIL mode, every bad file."""

import http.server
import io
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mmlab.data.image_io import ImageLoadError, load_image


def rgb_at(image, xy):
    assert image.mode == "RGB"
    return image.getpixel(xy)


# --- sources -------------------------------------------------------------------------------------


def test_path_and_str(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (4, 3), (200, 10, 20)).save(path)
    for source in (path, str(path)):
        image = load_image(source)
        assert image.size == (4, 3) and rgb_at(image, (0, 0)) == (200, 10, 20)


def test_numpy_uint8_float_and_grayscale():
    hwc = np.zeros((2, 3, 3), np.uint8)
    hwc[..., 1] = 128
    assert rgb_at(load_image(hwc), (2, 1)) == (0, 128, 0)
    assert load_image(hwc).size == (3, 2)  # (width, height)
    assert rgb_at(load_image(np.full((2, 2, 3), 0.5)), (0, 0)) == (128, 128, 128)
    assert rgb_at(load_image(np.full((2, 2), 77, np.uint8)), (1, 1)) == (77, 77, 77)
    assert rgb_at(load_image(np.full((2, 2, 1), 1.0, np.float32)), (1, 1)) == (255, 255, 255)


def test_numpy_rgba_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent black
    assert rgb_at(load_image(rgba), (0, 0)) == (255, 255, 255)


def test_torch_chw_tensor_uint8_and_float():
    chw = torch.zeros(3, 5, 7)
    chw[0] = 1.0
    image = load_image(chw)
    assert image.size == (7, 5) and rgb_at(image, (6, 4)) == (255, 0, 0)
    assert rgb_at(load_image(torch.full((1, 3, 2, 2), 9, dtype=torch.uint8)), (0, 0)) == (9, 9, 9)
    assert rgb_at(load_image(torch.full((2, 2), 0.2)), (0, 0)) == (51, 51, 51)


def test_normalized_or_channels_last_tensors_are_refused_with_advice():
    with pytest.raises(ImageLoadError, match="un-normalize"):
        load_image(torch.randn(3, 8, 8) * 3)
    with pytest.raises(ImageLoadError, match=r"permute\(2, 0, 1\)"):
        load_image(torch.zeros(8, 8, 3))
    with pytest.raises(ImageLoadError, match=r"transpose\(1, 2, 0\)"):
        load_image(np.zeros((3, 8, 8), np.uint8))


def test_bytes_of_an_image_file():
    buffer = io.BytesIO()
    Image.new("RGBA", (2, 2), (0, 0, 255, 255)).save(buffer, "PNG")
    for source in (buffer.getvalue(), bytearray(buffer.getvalue()), memoryview(buffer.getvalue())):
        assert rgb_at(load_image(source), (1, 1)) == (0, 0, 255)
    with pytest.raises(ImageLoadError, match="the uploaded file is not an image"):
        load_image(b"GIF89a but not really")
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(buffer.getvalue(), max_bytes=10)


def test_unsupported_source_type():
    with pytest.raises(ImageLoadError, match="Cannot load an image from a int"):
        load_image(42)


# --- modes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_white(mode):
    image = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (0, 0, 0, 255))  # one opaque black pixel
    if mode == "PA":  # palette + alpha; PIL's own conversions to PA drop the alpha
        source = Image.new("PA", (2, 1))
        source.putpalette([0, 0, 0] * 256)
        source.putpixel((1, 0), (0, 255))
    else:
        source = image.convert(mode)
    loaded = load_image(source)
    assert rgb_at(loaded, (0, 0)) == (255, 255, 255)
    assert rgb_at(loaded, (1, 0)) == (0, 0, 0)


def test_half_transparent_red_is_pink_not_dark():
    loaded = load_image(Image.new("RGBA", (1, 1), (255, 0, 0, 128)))
    assert rgb_at(loaded, (0, 0)) == (255, 127, 127)


def test_palette_with_transparency_from_a_gif_file(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    path = tmp_path / "t.gif"
    image.save(path, transparency=0)
    loaded = load_image(path)
    assert rgb_at(loaded, (0, 0)) == (255, 255, 255)  # index 0 is transparent: white, not black
    assert rgb_at(loaded, (1, 0)) == (255, 0, 0)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=100)  # pure red in CMYK
    r, g, b = rgb_at(load_image(path), (4, 4))
    assert r > 230 and g < 30 and b < 30


@pytest.mark.parametrize("mode, suffix", [("I;16", ".png"), ("I", ".tif")])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, mode, suffix):
    values = np.array([[0, 16384, 32768, 65535]], np.uint16)
    path = tmp_path / f"grey16{suffix}"
    image = Image.fromarray(values) if mode == "I;16" else Image.fromarray(values.astype(np.int32), "I")
    image.save(path)
    assert Image.open(path).mode in (mode, "I")  # older Pillow releases (10.0 among them) open 16-bit PNGs as "I"
    loaded = load_image(path)
    assert [rgb_at(loaded, (x, 0))[0] for x in range(4)] == [0, 64, 128, 255]


def test_16_bit_numpy_array_is_scaled():
    assert rgb_at(load_image(np.full((1, 1), 32896, np.uint16)), (0, 0)) == (128, 128, 128)


def test_float_mode_f():
    assert rgb_at(load_image(Image.fromarray(np.full((1, 1), 0.5, np.float32), "F")), (0, 0)) == (128, 128, 128)


def test_one_bit_and_l(tmp_path):
    one = Image.new("1", (2, 1))
    one.putpixel((1, 0), 1)
    path = tmp_path / "bits.png"
    one.save(path)
    loaded = load_image(path)
    assert rgb_at(loaded, (0, 0)) == (0, 0, 0) and rgb_at(loaded, (1, 0)) == (255, 255, 255)
    assert rgb_at(load_image(Image.new("L", (1, 1), 99)), (0, 0)) == (99, 99, 99)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (4, 2), (0, 0, 255))
    image.putpixel((0, 0), (255, 0, 0))  # red in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.png"
    image.save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.size == (2, 4)
    assert rgb_at(loaded, (1, 0)) == (255, 0, 0)  # top-left moved to top-right


# --- bad files -----------------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="is not a file"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not pixels")
    with pytest.raises(ImageLoadError, match="notes.png is not an image"):
        load_image(path)
    assert issubclass(ImageLoadError, ValueError)


def test_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match=r"cut.jpg could not be decoded.*truncated"):
        load_image(path)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: what a decompression bomb looks like to a reader."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(50_000, 50_000))
    with pytest.raises(ImageLoadError, match="bomb.png.*decompression bomb"):
        load_image(path)


def test_max_pixels_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    with pytest.raises(ImageLoadError, match=r"big.png has 200 x 100 = 20,000 pixels.*max_pixels"):
        load_image(path, max_pixels=10_000)
    assert load_image(path, max_pixels=20_000).size == (200, 100)


def test_file_over_max_bytes(tmp_path):
    path = tmp_path / "heavy.png"
    Image.effect_noise((100, 100), 50).save(path)
    with pytest.raises(ImageLoadError, match="heavy.png is .* MiB, above the limit"):
        load_image(path, max_bytes=1000)


# --- URLs against a local server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    png = io.BytesIO()
    Image.new("RGB", (3, 3), (1, 2, 3)).save(png, "PNG")
    routes = {"/ok.png": png.getvalue(), "/big.bin": b"\0" * 300_000}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = routes.get(self.path)
            if self.path == "/trickle":
                self.send_response(200)
                self.end_headers()
                for _ in range(50):  # one byte every 0.1 s: each read is quick, the whole is slow
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_url_ok(server):
    image = load_image(f"{server}/ok.png")
    assert image.size == (3, 3) and rgb_at(image, (0, 0)) == (1, 2, 3)


def test_url_404(server):
    with pytest.raises(ImageLoadError, match="HTTP 404"):
        load_image(f"{server}/missing.png")


def test_url_too_large(server):
    with pytest.raises(ImageLoadError, match="big.bin is larger than"):
        load_image(f"{server}/big.bin", max_bytes=100_000)


def test_url_slow_trickle_hits_the_deadline(server):
    start = time.monotonic()
    with pytest.raises(ImageLoadError, match="no complete answer within 0.5 s"):
        load_image(f"{server}/trickle", timeout=0.5)
    assert time.monotonic() - start < 2


def test_url_server_that_never_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never replies
    try:
        start = time.monotonic()
        with pytest.raises(ImageLoadError, match="within 0.5 s"):
            load_image(f"http://127.0.0.1:{listener.getsockname()[1]}/x.png", timeout=0.5)
        assert time.monotonic() - start < 2
    finally:
        listener.close()
