"""An ipywidgets view of a `ChatSession`: type a question, read the transcript, change the image.

Plain ipywidgets, 7 (Colab's) or 8 (no custom JavaScript), so it runs in JupyterLab, Colab and VS Code; what
differs between the two versions lives in `mmlab.chat.ipywidgets_compat`. The transcript is an
`HTML` widget rebuilt from the session's turns: nothing is printed inside an `Output` widget (such prints are
stored in the widget's state and stall nbconvert/nbval). Every text is HTML-escaped before it is shown, and
every error of a handler becomes a line in the transcript instead of vanishing into the browser console.
"""

from __future__ import annotations

import html
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import ipywidgets as widgets
from PIL import Image

from mmlab.chat.ipywidgets_compat import ShowsWidget, clear_upload, uploaded_file
from mmlab.chat.session import ChatSession
from mmlab.data.image_io import load_image

PREVIEW_SIZE = 160  # pixels, longest side of the image preview
_STYLES = {
    "user": ("You", "color:#1a4fa0"),
    "model": ("BLIP-2", "color:#0b6b35"),
    "note": ("", "color:#666;font-style:italic"),
    "error": ("Error", "color:#b00020"),
}


@dataclass(frozen=True)
class Line:
    """One line of the transcript: who (`user`, `model`, `note` or `error`) and the plain text."""

    kind: str
    text: str


class ChatWidget(ShowsWidget):
    """Chat about an image in a notebook. Show it by leaving it last in a cell, or with `.display()`.

    `images` (optional) fills a dropdown of ready images; an upload button takes any PNG or JPEG file.
    Changing the image starts a new conversation. `last_error` holds the last exception a handler caught.
    """

    def __init__(self, session: ChatSession, *, images: Mapping[str, Image.Image] | None = None):
        self.session = session
        self.images = dict(images or {})
        self.lines: list[Line] = []
        self.last_error: BaseException | None = None

        self.transcript = widgets.HTML()
        self.status = widgets.HTML()
        self.text = widgets.Text(placeholder="Ask about the image, then press Enter or Send",
                                 layout=widgets.Layout(width="60%"))
        self.send = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.clear = widgets.Button(description="Clear", tooltip="Forget the conversation (keeps the image)")
        self.preview = widgets.Image(format="png", layout=widgets.Layout(max_width=f"{PREVIEW_SIZE}px"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload image")
        self.picker = widgets.Dropdown(options=list(self.images), value=None, description="Image:")

        self.send.on_click(self._on_send)
        self.clear.on_click(self._on_clear)
        with warnings.catch_warnings():
            # `on_submit` fires on Enter only; its suggested replacement (observing `value` with
            # continuous_update=False) also fires when the box loses focus, sending half-typed questions.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.text.on_submit(self._on_send)
        self.upload.observe(self._on_upload, names="value")
        self.picker.observe(self._on_pick, names="value")

        self._show_preview()
        self._render()
        self._set_status("Ready. Ask a question about the image.")

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        if not hasattr(self, "_box"):
            image_tools = [self.picker] if self.images else []
            side = widgets.VBox([self.preview, *image_tools, self.upload])
            chat = widgets.VBox([self.transcript, widgets.HBox([self.text, self.send, self.clear]), self.status],
                                layout=widgets.Layout(flex="1"))
            self._box = widgets.HBox([side, chat])
        return self._box

    def display(self) -> None:
        from IPython.display import display

        display(self.widget)

    # Handlers: each one reports its errors in the transcript.

    def _on_send(self, _=None) -> None:
        question = self.text.value.strip()
        if not question:
            self._set_status("Type a question first.")
            return
        self.text.value = ""
        self._add(Line("user", question))
        self._set_busy(True)
        try:
            reply = self.session.ask(question)
        except Exception as error:  # noqa: BLE001 - shown to the learner, kept in last_error
            self._report(error, "The question was not answered and is not remembered; fix the cause and send again.")
        else:
            if self.session.dropped_turns:
                self._add(Line("note", f"The oldest {self.session.dropped_turns} turn(s) did not fit the model's "
                                       "context and were left out of the prompt."))
            self._add(Line("model", reply or "(no answer)"))
        finally:
            self._set_busy(False)

    def _on_clear(self, _=None) -> None:
        self.session.reset()
        self.lines = []
        self._render()
        self._set_status("Conversation cleared. Ask a new question.")

    def _on_upload(self, change) -> None:
        uploaded = uploaded_file(change["new"])
        if uploaded is None:  # the upload box was emptied after a previous upload
            return
        name, content = uploaded
        try:
            image = load_image(content)
        except Exception as error:  # noqa: BLE001
            self._report(error, f"Could not read {name!r} as an image; upload a PNG or JPEG file.")
        else:
            self._new_image(image, name)
        finally:
            clear_upload(self.upload)

    def _on_pick(self, change) -> None:
        if change["new"] is not None:
            self._new_image(self.images[change["new"]], change["new"])

    # Helpers

    def _new_image(self, image: Image.Image, name: str) -> None:
        try:
            self.session.set_image(image)
            self._show_preview()
        except Exception as error:  # noqa: BLE001
            self._report(error, f"The image {name!r} could not be used; try another file.")
            return
        self.lines = [Line("note", f"New image: {name}. The conversation starts over.")]
        self._render()
        self._set_status("Ready. Ask a question about the new image.")

    def _report(self, error: Exception, advice: str) -> None:
        self.last_error = error
        self._add(Line("error", f"{type(error).__name__}: {error} {advice} (Details: the widget's last_error.)"))

    def _show_preview(self) -> None:
        thumbnail = self.session.image.copy()
        thumbnail.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        buffer = io.BytesIO()
        thumbnail.save(buffer, format="PNG")
        self.preview.value = buffer.getvalue()

    def _add(self, line: Line) -> None:
        self.lines.append(line)
        self._render()

    def _render(self) -> None:
        rows = []
        for line in self.lines:
            who, style = _STYLES[line.kind]
            label = f"<b>{who}:</b> " if who else ""
            rows.append(f'<div style="{style};margin:2px 0">{label}{html.escape(line.text)}</div>')
        body = "".join(rows) or '<div style="color:#999">(no messages yet)</div>'
        self.transcript.value = f'<div style="font-family:sans-serif;padding:4px">{body}</div>'

    def _set_busy(self, busy: bool) -> None:
        self.send.disabled = self.text.disabled = self.clear.disabled = busy
        if busy:
            self._set_status("thinking…")
        else:
            turns = len(self.session.history)
            self._set_status(f"Ready. Memory: {turns} turn{'s' if turns != 1 else ''}.")

    def _set_status(self, text: str) -> None:
        self.status.value = f'<span style="color:#555">{html.escape(text)}</span>'
