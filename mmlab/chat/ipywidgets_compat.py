"""The places where ipywidgets 7 (Colab's, 7.7.1) and ipywidgets 8 differ, for the chat widget.

- Display: an ipywidgets 8 widget shows itself through `_repr_mimebundle_`, a 7 widget through
  `_ipython_display_`; `ShowsWidget` gives an object whichever of the two the installed version uses.
- Uploads: `FileUpload.value` is `{name: {"metadata": {...}, "content": bytes}}` in 7 and a tuple of
  `{"name": ..., "content": memoryview, ...}` in 8 (`uploaded_file`); in 7 it is read-only, so emptying the
  box after an upload goes through `set_trait` (`clear_upload`).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

IPYWIDGETS_7 = int(widgets.__version__.split(".")[0]) < 8


class ShowsWidget:
    """Mixin: displaying the object displays its `widget` property, under ipywidgets 7 and 8 alike."""

    widget: widgets.Widget

    if IPYWIDGETS_7:

        def _ipython_display_(self, **kwargs) -> None:
            self.widget._ipython_display_(**kwargs)

    else:

        def _repr_mimebundle_(self, **kwargs) -> dict[str, Any] | None:
            return self.widget._repr_mimebundle_(**kwargs)


def uploaded_file(value: Any) -> tuple[str, bytes] | None:
    """The (file name, content) of the first file in a `FileUpload.value` of either version; None when empty."""
    if not value:
        return None
    if isinstance(value, dict):  # ipywidgets 7
        item = next(iter(value.values()))
        return item["metadata"]["name"], bytes(item["content"])
    item = value[0]  # ipywidgets 8
    return item["name"], bytes(item["content"])


def clear_upload(upload: widgets.FileUpload) -> None:
    """Empty the upload box (so that the same file can be uploaded again), in the installed version's format."""
    upload.set_trait("value", type(upload.value)())
