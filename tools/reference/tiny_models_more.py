"""Two more tiny random LLaVA-NeXT checkpoints, in the formats of the llava-hf checkpoints the
first two fixtures do not cover (written by make_more_fixtures.py):

  llava-next-yi-tiny      like llava-hf/llava-v1.6-34b-hf: LLaMA-architecture text model (Yi),
                          a SentencePiece-style BPE tokenizer.json (byte fallback, "▁" for spaces,
                          no dummy prefix, no BOS added), ChatML special tokens <|im_start|> /
                          <|im_end|> in the base vocabulary, <|im_end|> as EOS, the ChatML
                          processor template in chat_template.json;
  llava-next-llama3-tiny  like llava-hf/llama3-llava-next-8b-hf: LLaMA-3 text model (GQA, rope
                          theta 5e5), a byte-level BPE tokenizer.json in Llama-3's configuration
                          (Split with the Llama-3 regex, ByteLevel without regex, ignore_merges,
                          BOS <|begin_of_text|> through a Sequence post-processor), EOS ids
                          [<|end_of_text|>, <|eot_id|>] in generation_config.json, the Llama-3
                          processor template in chat_template.json.

The real tokenizer files are 3.5 MB (Yi, 64k pieces) and 9 MB (Llama-3, 128k pieces); they cannot
be downloaded here and would dominate the fixtures, so both tokenizers are trained with the
`tokenizers` library on a fixed corpus (below) in the real pre-tokenizer / normaliser / decoder
configuration, with small vocabularies (about 3000 pieces). Vision tower, projector and
initialisation are those of tiny_models.py.
"""

import json
import os
import random

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AddedToken,
    LlamaConfig,
    LlamaTokenizerFast,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    PreTrainedTokenizerFast,
)

import tiny_models as tm
from anyres import PINPOINTS

YI_DIR = "llava-next-yi-tiny"
LLAMA3_DIR = "llava-next-llama3-tiny"
VOCAB = 3000

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")

CHATML_TEMPLATE_FILE = "llava-v1.6-34b-hf.jinja"
LLAMA3_TEMPLATE_FILE = "llama3-llava-next-8b-hf.jinja"

# ---------------------------------------------------------------------------------------------
# training corpus: fixed text plus seeded pseudo-text in several scripts

_WORDS = ("the of and to in is was that for on with as by it at from this be are an which or have not were his "
          "but had they their one all been has more when who will can would there what so about if out up into "
          "image picture photo shown describe what colour color cat dog car street sky tree water person people "
          "sitting standing red blue green yellow white black large small left right top bottom question answer "
          "assistant user system chart graph table text number words phrase single detail scene background "
          "hello world quick brown fox jumps over lazy dog they're it's don't I'm we've you'll she'd isn't").split()
_SCRIPTS = ["Привет мир это тест", "Καλημέρα κόσμε", "你好世界我爱北京天安门", "日本語のテキストです", "안녕하세요 세계",
            "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "Ça va? Où est l'hôtel? Grüße aus Köln", "😀👍🏽❤️🦩"]


def corpus(seed=1234, n=4000):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(3, 25)
        words = [rng.choice(_WORDS) for _ in range(k)]
        if rng.random() < 0.3:
            words.insert(rng.randint(0, k), str(rng.randint(0, 10 ** rng.randint(1, 7))))
        if rng.random() < 0.2:
            words.insert(rng.randint(0, k), rng.choice(_SCRIPTS))
        s = " ".join(words)
        if rng.random() < 0.5:
            s = s[0].upper() + s[1:] + rng.choice([".", "?", "!", ":", ",", "..."])
        if rng.random() < 0.2:
            s += rng.choice(["\n", "\n\n", "\r\n", "\t", "  "])
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------------
# tokenizers

YI_SPECIAL = ["<unk>", "<|startoftext|>", "<|endoftext|>", "<|Placeholder1|>", "<|Placeholder2|>",
              "<|Placeholder3|>", "<|im_start|>", "<|im_end|>", "<|im_sep|>"]


def make_yi_tokenizer():
    """SentencePiece-style BPE as LlamaTokenizerFast converts Yi: Replace(" " -> "▁") without a
    dummy prefix, byte fallback, decoder Replace + ByteFallback + Fuse, no BOS."""
    bytes_ = ["<0x%02X>" % b for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    # train on words (so merges stay within "▁word" pieces, as SentencePiece's do), then drop the
    # pre-tokenizer: the converted tokenizer.json has none
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    tr = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=YI_SPECIAL + bytes_, limit_alphabet=400,
                             show_progress=False)
    tok.train_from_iterator(corpus(), tr)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    # the trainer made the byte pieces added tokens; in a converted SentencePiece model they are
    # ordinary vocabulary pieces (matched by byte fallback only)
    tj = json.loads(tok.to_str())
    tj["added_tokens"] = [t for t in tj["added_tokens"] if t["content"] in YI_SPECIAL]
    tok = Tokenizer.from_str(json.dumps(tj))
    fast = LlamaTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|im_end|>",
                              unk_token="<unk>", add_bos_token=False, add_eos_token=False, legacy=True,
                              clean_up_tokenization_spaces=False)
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|im_sep|>"]})
    n = fast.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    n += fast.add_special_tokens({"pad_token": AddedToken("<pad>", special=True, normalized=False)})
    assert n == 2
    return fast


LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                  "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]


def make_llama3_tokenizer():
    """Byte-level BPE in Llama-3's tokenizer.json configuration."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tr = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             special_tokens=[], show_progress=False)
    tok.train_from_iterator(corpus(), tr)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in LLAMA3_SPECIAL])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   clean_up_tokenization_spaces=False)
    n = fast.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    n += fast.add_special_tokens({"pad_token": AddedToken("<pad>", special=True, normalized=False)})
    assert n == 2
    return fast


# ---------------------------------------------------------------------------------------------
# models


def text_config(kind, vocab, bos, eos):
    yi = kind == "yi"
    return LlamaConfig(hidden_size=tm.HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=5e6 if yi else 5e5,
                       vocab_size=vocab, max_position_embeddings=4096 if yi else 8192, tie_word_embeddings=False,
                       bos_token_id=bos, eos_token_id=eos, pad_token_id=None)


def build(kind, tok, seed):
    image_id = tok.convert_tokens_to_ids("<image>")
    vocab = (len(tok) + 63) // 64 * 64      # padded rows, as the llava-hf conversions add
    eos = tok.convert_tokens_to_ids("<|im_end|>" if kind == "yi" else "<|eot_id|>")
    bos = tok.convert_tokens_to_ids("<|startoftext|>" if kind == "yi" else "<|begin_of_text|>")
    cfg = LlavaNextConfig(vision_config=tm.vision_config(), text_config=text_config(kind, vocab, bos, eos),
                          image_token_index=image_id, projector_hidden_act="gelu",
                          vision_feature_select_strategy="default", vision_feature_layer=-2,
                          image_grid_pinpoints=PINPOINTS, tie_word_embeddings=False,
                          use_image_newline_parameter=True, torch_dtype="float16")
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(tm.init_value(name, tuple(p.shape), seed).to(torch.float16).to(torch.float32))
    return model


def save(model, kind, model_dir, tok, template_src):
    import copy
    import shutil

    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    half = copy.deepcopy(model).to(torch.float16)
    half.save_pretrained(model_dir, safe_serialization=True)
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:
        json.dump(tm.next_preprocessor_config(), f, indent=2, sort_keys=True)
        f.write("\n")
    tok.save_pretrained(model_dir)
    for extra in ("tokenizer.model",):
        p = os.path.join(model_dir, extra)
        if os.path.exists(p):
            os.remove(p)
    # the processor template, as the llava-hf repos carry it
    with open(os.path.join(model_dir, "chat_template.json"), "w") as f:
        json.dump({"chat_template": template_src}, f, indent=2)
        f.write("\n")
    # compact tokenizer.json (same content)
    p = os.path.join(model_dir, "tokenizer.json")
    with open(p) as f:
        tj = json.load(f)
    with open(p, "w") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
    # Llama-3: generation stops at either EOS, as llama3-llava-next-8b-hf's generation_config says
    gp = os.path.join(model_dir, "generation_config.json")
    with open(gp) as f:
        gc = json.load(f)
    if kind == "llama3":
        gc["eos_token_id"] = [tok.convert_tokens_to_ids("<|end_of_text|>"), tok.convert_tokens_to_ids("<|eot_id|>")]
    with open(gp, "w") as f:
        json.dump(gc, f, indent=2, sort_keys=True)
        f.write("\n")
