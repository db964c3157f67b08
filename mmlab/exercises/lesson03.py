"""Lesson 03, BLIP-2's inputs: self-checks and worked solutions."""

from __future__ import annotations

import inspect

from mmlab.exercises import Exercise, Verdict, solved, verdict


def check_image_tokens(answer: int, model, processor) -> Verdict:
    """Exercise 1: how many `<image>` placeholders does the processor put in front of every prompt?"""
    n = processor.num_query_tokens
    vision = model.config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    wrong = {
        patches: f"{patches} is the number of image patches. The Q-Former reads all of them but hands the language "
                 "model only one vector per learned query.",
        patches + 1: f"{patches + 1} is what the vision tower outputs (patches plus a class token); the Q-Former "
                     "compresses it.",
    }.get(answer, "Count the ids equal to model.config.image_token_index in processor(...)['input_ids'].")
    return verdict(answer == n, f"One placeholder per learned query: num_query_tokens = {n}.", wrong)


def check_space_marker(code_point: int) -> Verdict:
    """Exercise 2: the code point of the character GPT-2's byte-level BPE shows for a space."""
    return verdict(
        code_point == 0x120,
        "'Ġ' is U+0120 (288): byte 0x20 (space) is shifted by 256 into a printable character.",
        "U+00A0 (160) is the no-break space the printed chapter names, a different character."
        if code_point == 0xA0 else "Try ord('Ġ') on a token such as 'Ġwas'.",
    )


SENTENCE = "A large red circle"


def readable_tokens(tokenizer, text: str) -> list[str]:
    """The tokens of `text` (start token included), with the space marker `Ġ` shown as `_`."""
    ids = tokenizer(text)["input_ids"]
    return [token.replace("Ġ", "_") for token in tokenizer.convert_ids_to_tokens(ids)]


def check_tokens(tokens: list[str], processor) -> Verdict:
    """Exercise 3: the tokens of SENTENCE as the lesson shows them (start token included, `Ġ` as `_`)."""
    want = readable_tokens(processor.tokenizer, SENTENCE)
    got = list(tokens)
    if got == want:
        return verdict(True, f"{want}: a word with a space in front is one token starting with _, the first word "
                       "has none.", "")
    if [t.replace("_", "Ġ") for t in got] == [t.replace("_", "Ġ") for t in want] or "Ġ" in "".join(got):
        hint = "Replace the space marker 'Ġ' with '_'."
    elif got == want[1:]:
        hint = f"Keep the start token {want[0]!r} that the tokenizer puts first."
    else:
        hint = "Use tokenizer(SENTENCE)['input_ids'], then tokenizer.convert_ids_to_tokens(ids)."
    return verdict(False, "", hint)


def check_soft_prompt_shape(shape, model) -> Verdict:
    """Exercise 4: the shape of `model.language_projection(query_output)` for one image."""
    want = (1, model.config.num_query_tokens, model.config.text_config.hidden_size)
    got = tuple(shape)
    hint = (
        "That is the Q-Former's width; the projection maps it to the language model's embedding width."
        if got[-1:] == (model.config.qformer_config.hidden_size,)
        else "One row per query, as wide as the language model's token embeddings."
    )
    return verdict(got == want, f"{want}: {want[1]} soft visual tokens, each a {want[2]}-wide 'word' "
                   "the language model reads like its own token embeddings.", hint)


def check_real_image_embeds(shape, real_config) -> Verdict:
    """Exercise 5: the shape of the real BLIP-2's `image_embeds` for one image, predicted from its config."""
    vision = real_config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    want = (1, patches + 1, vision.hidden_size)
    why = (f"{vision.image_size} px in patches of {vision.patch_size}: {vision.image_size // vision.patch_size} x "
           f"{vision.image_size // vision.patch_size} = {patches} patches, plus the class token, each "
           f"{vision.hidden_size} wide (the ViT-g): {want}.")
    got = tuple(int(n) for n in shape)
    if got == want:
        return verdict(True, why, "")
    if len(got) == 3 and got[1] == patches:
        return verdict(False, "", "The patches are right; the vision tower puts one more token in front of them.")
    if len(got) == 3 and got[1] == patches + 1:
        return verdict(False, "", "The number of tokens is right; the width is the vision tower's hidden_size.")
    return verdict(False, "", "Read image_size, patch_size and hidden_size in real_config.vision_config; "
                   "section 1 printed the same shape for the model loaded here.")


EXERCISES = {
    1: Exercise(solved("""
        inputs = processor(images=image, text="Question: What is this? Answer:", return_tensors="pt")
        placeholders = (inputs["input_ids"] == model.config.image_token_index).sum().item()"""),
        "lesson03.check_image_tokens(placeholders, model, processor)",
        "Every learned query becomes one token of the prompt, so the processor reserves one placeholder per query:"),
    2: Exercise(solved('code_point = ord("Ġ")  # 288, hex 0x120'), "lesson03.check_space_marker(code_point)",
                "GPT-2's byte-level BPE shows each byte as a printable character; the space byte 0x20 becomes "
                "chr(0x20 + 256):"),
    3: Exercise(solved(inspect.getsource(readable_tokens) + "\ntokens = readable_tokens(processor.tokenizer, lesson03.SENTENCE)"),
                "lesson03.check_tokens(tokens, processor)", points=2),
    4: Exercise(solved("""
        pixels = processor(images=image, return_tensors="pt")["pixel_values"].to(model.device, model.vision_model.dtype)
        image_embeds = model.vision_model(pixels).last_hidden_state  # (1, patches + 1, vision width)
        queries = model.qformer(query_embeds=model.query_tokens, encoder_hidden_states=image_embeds).last_hidden_state
        shape = model.language_projection(queries.to(image_embeds.dtype)).shape  # (1, num_query_tokens, LM width)"""),
        "lesson03.check_soft_prompt_shape(shape, model)", "Run the three stages by hand:"),
    5: Exercise(solved("""
        vision = real_config.vision_config
        shape = (1, (vision.image_size // vision.patch_size) ** 2 + 1, vision.hidden_size)  # (1, 257, 1408)"""),
        "lesson03.check_real_image_embeds(shape, real_config)",
        "One token per patch plus the class token, as wide as the vision tower:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
