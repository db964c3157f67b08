"""Chat with BLIP-2 about an image: `ChatSession` (prompting and memory) and `ChatWidget` (its ipywidgets view)."""

from mmlab.chat.session import ChatSession, PromptTooLongError, Turn
from mmlab.chat.widget import ChatWidget

__all__ = ["ChatSession", "ChatWidget", "PromptTooLongError", "Turn"]
