"""A chat about one image with BLIP-2: memory of earlier turns, and prompts that fit the model's context.

BLIP-2 has no chat template; the chapter makes it chat by putting the earlier turns in the prompt:
`Question: q1 Answer: a1. Question: q2 Answer:`. The session keeps every turn, and builds each prompt from the
newest turns that fit: image placeholders + prompt tokens + `max_new_tokens` must fit the language model's
`max_position_embeddings`, so the oldest turns are left out first.
"""

from __future__ import annotations

from PIL import Image

from mmlab.blip2 import Turn, answer, check_ready, context_length, format_prompt


class PromptTooLongError(ValueError):
    """Even the newest question alone does not fit the model's context."""


class ChatSession:
    """Questions and answers about one image.

    `history` holds every turn (a list of `Turn`); prompts use the newest turns that fit the context
    (`dropped_turns` says how many of the oldest the last prompt left out). `max_prompt_tokens` optionally caps
    the prompt's text tokens (counted as the tokenizer counts them, start token included, image placeholders not).
    """

    def __init__(self, model, processor, image: Image.Image, *, max_new_tokens: int = 30,
                 max_prompt_tokens: int | None = None):
        check_ready(model, processor)
        self.model, self.processor = model, processor
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        room = context_length(model) - processor.num_query_tokens - max_new_tokens
        self.prompt_budget = room if max_prompt_tokens is None else min(room, max_prompt_tokens)
        if self.prompt_budget < 1:
            raise ValueError(
                f"No room for a prompt: the context holds {context_length(model)} tokens, the image takes "
                f"{processor.num_query_tokens} and max_new_tokens={max_new_tokens}. Lower max_new_tokens."
            )
        self.history: list[Turn] = []
        self.dropped_turns = 0
        self.set_image(image)

    def set_image(self, image: Image.Image) -> None:
        """Talk about a new image; the history of the old one is cleared."""
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"The image must be a PIL.Image, got {type(image).__name__}. Open files with PIL.Image.open(path)."
            )
        self.image = image.convert("RGB")
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the image stays)."""
        self.history = []
        self.dropped_turns = 0

    def prompt_tokens(self, prompt: str) -> int:
        """Text tokens of a prompt, as the processor counts them (start token included, image placeholders not)."""
        return len(self.processor.tokenizer(prompt)["input_ids"])

    def build_prompt(self, question: str) -> str:
        """The prompt for `question`: the newest earlier turns that fit, then the question."""
        return format_prompt(question, self._turns_that_fit(question))

    def ask(self, question: str) -> str:
        """Answer `question` about the image, remembering the turn."""
        if not question.strip():
            raise ValueError("The question is empty: type a question about the image.")
        turns = self._turns_that_fit(question)
        reply = answer(self.model, self.processor, self.image, question, history=turns,
                       max_new_tokens=self.max_new_tokens)
        self.history.append(Turn(question.strip(), reply))
        return reply

    def _turns_that_fit(self, question: str) -> list[Turn]:
        needed = self.prompt_tokens(format_prompt(question))
        if needed > self.prompt_budget:
            if self.prompt_budget == self.max_prompt_tokens:
                limit, other = f"the session's max_prompt_tokens is {self.max_prompt_tokens}", "a larger max_prompt_tokens"
            else:
                limit = (f"the language model's context is {context_length(self.model)} tokens, the image takes "
                         f"{self.processor.num_query_tokens} and the answer up to {self.max_new_tokens}")
                other = "a smaller max_new_tokens"
            raise PromptTooLongError(
                f"The question alone takes {needed} prompt tokens, but only {self.prompt_budget} fit: {limit}. "
                f"Ask a shorter question (or create the session with {other})."
            )
        keep = len(self.history)
        while keep and self.prompt_tokens(format_prompt(question, self.history[-keep:])) > self.prompt_budget:
            keep -= 1
        self.dropped_turns = len(self.history) - keep
        return self.history[len(self.history) - keep:]
