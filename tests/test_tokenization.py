from transformers import AutoTokenizer

from mmlab.models import embedded_path
from mmlab.tokenization import IMAGE_TOKEN, clip_tokenizer

CHAPTER_IDS = [49406, 320, 6829, 1629, 530, 518, 2583, 49407]


def test_rebuilt_clip_tokenizer_matches_the_chapter():
    tok = clip_tokenizer()
    assert len(tok) == 49408
    assert tok("a puppy playing in the snow").input_ids == CHAPTER_IDS
    assert tok.model_max_length == 77


def test_clip_tokenizer_agrees_with_open_clip():
    import open_clip

    text = "A Supercar on the road, with the sunset in the background!"
    ours = clip_tokenizer()(text).input_ids
    theirs = open_clip.get_tokenizer("ViT-B-32")([text])[0].tolist()
    assert theirs[: len(ours)] == ours


def test_embedded_clip_tokenizer_loads_with_auto_tokenizer():
    tok = AutoTokenizer.from_pretrained(embedded_path("clip"))
    assert tok("a puppy playing in the snow").input_ids == CHAPTER_IDS
    assert tok.model_max_length == 77


def test_embedded_blip2_tokenizer_is_gpt2_style_with_opt_specials():
    tok = AutoTokenizer.from_pretrained(embedded_path("blip2"))
    assert type(tok).__name__ == "GPT2Tokenizer"
    ids = tok("Her vocalization was remarkably melodic").input_ids
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens[0] == "</s>" and ids[0] == tok.bos_token_id == 2
    assert tok.pad_token == "<pad>" and tok.pad_token_id == 1
    assert any(t.startswith("\u0120") for t in tokens)  # 'Ġ' (U+0120, 288) marks a leading space
    assert tok.decode(ids, skip_special_tokens=True) == "Her vocalization was remarkably melodic"
    assert IMAGE_TOKEN in tok.get_vocab()
