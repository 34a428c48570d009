#!/usr/bin/env python3
"""Write tests/fixtures/tokenizer/cases.json: what Hugging Face's fast tokenizer does with the
committed fixture tokenizer.json, for test_tokenizer to compare against.

    /work/venv/bin/python tools/reference/make_tokenizer_cases.py \
        [--model-dir tests/fixtures/models/llava-next-tiny] [--out tests/fixtures/tokenizer/cases.json]

Contents (all deterministic: fixed strings plus random ones from a fixed seed):
  encode    [{text, ids, decoded, decoded_all}]  ids = tok(text).input_ids (BOS added);
            decoded / decoded_all = tok.decode(ids, skip_special_tokens=True / False).
  decode    [{ids, decoded, decoded_all}] for arbitrary id sequences (byte tokens forming valid
            and invalid UTF-8, specials between bytes, unknown ids).
  variants  [{name, patch, encode}] the same checks on tokenizer.json files derived from the
            fixture (other normaliser / pre-tokeniser / decoder / unk / added-token settings);
            `patch` says how: "set" replaces keys ("model.byte_fallback" addresses a nested
            key), "append_added_tokens" extends added_tokens. The C test applies the same patch.
  templates [{name, question, prompt}] the llava-hf processor chat templates rendered by Jinja.
Texts holding U+0000 also carry "text_hex" / "decoded_hex" (UTF-8 bytes in hex), since a C
string cannot hold them. The C build and tests never run this script.
"""

import argparse
import copy
import json
import os
import random
import shutil
import sys
import tempfile

import transformers
from transformers import AutoTokenizer

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---- chat templates (the llava-hf processors' Jinja, rendered with transformers) -------------------

VICUNA_JINJA = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != "
    "'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type',"
    " 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
MISTRAL_JINJA = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + "
    "message['content'][0]['text'] + '\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', "
    "'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% for content in message['content'] "
    "| selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{{' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
SYSTEM_HUMAN = ("A chat between a curious human and an artificial intelligence assistant. The assistant "
                "gives helpful, detailed, and polite answers to the human's questions. ")
SYSTEM_USER = ("A chat between a curious user and an artificial intelligence assistant. The assistant "
               "gives helpful, detailed, and polite answers to the user's questions. ")
QUESTIONS = [
    "What is shown in this image?",
    "Describe the picture in detail.\nAnswer the question using a single word or phrase.",
    "  Is there a cat?  ",
    "Quelle est la couleur du ciel ? 天空是什么颜色？",
    "",
]


def render_templates(tok):
    out = []
    for q in QUESTIONS:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
        vic = tok.apply_chat_template(msgs, chat_template=VICUNA_JINJA, add_generation_prompt=True, tokenize=False)
        mis = tok.apply_chat_template(msgs, chat_template=MISTRAL_JINJA, add_generation_prompt=True, tokenize=False)
        out += [
            {"name": "vicuna", "question": q, "prompt": vic},
            {"name": "llava-1.5", "question": q, "prompt": vic},
            {"name": "vicuna-system", "question": q, "prompt": SYSTEM_HUMAN + vic},
            {"name": "vicuna-lmms-eval", "question": q, "prompt": SYSTEM_USER + vic},
            {"name": "mistral", "question": q, "prompt": mis},
        ]
    return out


# ---- strings ---------------------------------------------------------------------------------------

FIXED = [
    # ASCII sentences
    "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "What is shown in this image?", "Describe the image in detail.", "I'm sure it's fine; isn't it?",
    "A radar chart compares multiple quantitative variables.", "e.g. Mr. Smith paid $3.50 (approx.) for it.",
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism", "HTTP/1.1 200 OK",
    "https://example.com/path?query=1&x=y#frag", "user@example.org", "CamelCaseIdentifierName snake_case_name",
    "def f(x):\n    return x * 2\n", "int main(void) { return 0; }", "SELECT * FROM t WHERE a = 'b';",
    "ALL CAPS SENTENCE HERE", "mIxEd CaSe WoRdS", "Answer the question using a single word or phrase.",
    # spaces, newlines, tabs
    " ", "  ", "   ", "          ", " leading", "  two leading", "trailing ", "trailing two  ",
    "inner  double", "inner   triple   spaces", " both ", "\n", "\n\n", "line1\nline2", "line1\r\nline2",
    "\ttab", "a\tb\tc", "mixed \t \n whitespace", "ends with newline\n", "\nstarts with newline",
    " \n ", "\u00a0non-breaking\u00a0space", "ideographic\u3000space", "em\u2003space", "zero\u200bwidth",
    # digits
    "0", "7", "42", "1234567890", "3.14159265358979323846", "-273.15", "1,000,000", "2024-06-11T12:34:56Z",
    "99999999999999999999999999999999", "0x1F 0b1010 0o777", "1e-10", "+33 6 12 34 56 78",
    # punctuation
    "!!!", "???", "...", "—", "–", "«quotes»", "“smart quotes”", "‘single’", "(parens) [brackets] {braces}",
    "#$%&*+-/<=>@\\^_`|~", "a.b,c;d:e", "''", '""', "<<>>", "@@@", "***bold***",
    # scripts
    "Привет, мир!", "Καλημέρα κόσμε", "你好，世界！", "我爱北京天安门。", "日本語のテキストです。", "カタカナ ひらがな",
    "안녕하세요 세계", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới",
    "Ça va? Où est l'hôtel?", "Grüße aus Köln", "Ølstue på Åland", "İstanbul ılık", "ქართული ენა", "Հայերեն",
    "ትግርኛ", "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝐁𝐨𝐥𝐝", "ꙮ", "𓀀𓀁", "𐌰𐌱𐌲",
    # emoji
    "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "❤️", "I ❤️ NY", "🦩 flamingo", "🧑🏿‍🚀", "⌚⏰",
    # combining marks
    "e\u0301", "cafe\u0301", "n\u0303", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o", "a\u0308\u0304",
    "\u0301 leading combining", "ก\u0e31\u0e49",
    # control characters and unusual code points
    "\x00", "a\x00b", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x7f", "bell\x07", "\x0b\x0c", "\ufeffBOM",
    "\ufffd", "\U0010ffff", "\ue000 private use", "\u2028line\u2029para", "\u0085next line",
    # literal vocabulary look-alikes
    "▁", "▁▁", "a▁b", "▁leading meta", "<0x0A>", "<0x41>", "<0xZZ>", "<0x",
    # special-token strings inside text
    "<image>", "<s>", "</s>", "<unk>", "<pad>", "<image><image>", "<s></s>", "<s><s>", "</s></s>",
    "a<image>b", " <image> ", "<image> ", " <image>", "x <image>\n", "\n<image>\n", "<image>\n",
    "<image>\nWhat is this?", "text </s> more", "<s> leading bos", "trailing eos</s>", "<unk><unk>",
    "<<image>>", "<imag", "<image", "image>", "<ima<image>ge>", "< image >", "<IMAGE>", "<pad><image><pad>",
    "<s>[INST] <image>\nhi [/INST]", "a <s> b </s> c <unk> d <pad> e", "<image>  <image>",
    # prompts as the templates render them
    "USER: <image>\nWhat is shown in this image? ASSISTANT:",
    "[INST] <image>\nWhat is shown in this image? [/INST]",
    SYSTEM_HUMAN + "USER: <image>\nWhat is shown in this image? ASSISTANT:",
    SYSTEM_USER + "USER: <image>\nWhat is this?\nAnswer the question using a single word or phrase. ASSISTANT:",
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions. USER: <image> \n What is this image about? \n ASSISTANT:",
    "USER: <image>\n ASSISTANT:", "[INST] <image>\n [/INST]", "USER: What? ASSISTANT: It is a cat.</s>",
    # empty
    "",
]


def random_strings(rng):
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " " * 6 + "\n\t",
        ".,;:!?'\"()-_/\\[]{}<>@#$%^&*+=~`|", "▁", "ñéüßøåçàèìòù", "αβγδεζηθλμπσφψω", "абвгдежзийклмнопрст",
        "的一是不了人我在有他这为之大来以个中上们", "あいうえおかきくけこアイウエオ", "가나다라마바사아자차카",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "אבגדהוזחטיכלמנסעפצקרשת", "कखगघचछजझटठडढणतथदधनपफबभमयरलवशसह",
        "😀😁😂🤣😃😄😅😆😉😊😋😎😍🥰😘", "\u0300\u0301\u0302\u0303\u0308\u200d\ufe0f",
        "\U0001d400\U0001d401\U0001f9a9\U0001fae0\u2603\u2764\U00013000", "<image>", "<s>", "</s>",
    ]
    out = []
    for i in range(160):
        n = rng.randint(1, 40 if i % 10 else 400)
        parts = []
        while sum(len(p) for p in parts) < n:
            pool = rng.choice(pools)
            if pool.startswith("<"):
                parts.append(pool)
            else:
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts))
    for _ in range(30):  # arbitrary code points (no surrogates, no noncharacters needed)
        cps = []
        for _ in range(rng.randint(1, 30)):
            c = rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x3000, 0xD7FF),
                            rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x10FFFF), 0x20, 0x20])
            cps.append(chr(c))
        out.append("".join(cps))
    return out


def long_strings(rng):
    lorem = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
             "labore et dolore magna aliqua. ")
    return [
        lorem * 40,
        " ".join(str(rng.randint(0, 10**9)) for _ in range(400)),
        "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(2500)),
        "".join(rng.choice("ab ▁\n") for _ in range(4000)),
        " " * 3000,
        "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0x400, 0x4FF), rng.randint(0x1F300, 0x1F64F)]))
                for _ in range(3000)),
    ]


# ---- id sequences for decode-only cases -------------------------------------------------------------

def byte_ids(tok, data):
    return [tok.convert_tokens_to_ids("<0x%02X>" % b) for b in data]


def decode_sequences(tok, rng):
    n = len(tok)
    img, pad = tok.convert_tokens_to_ids("<image>"), tok.convert_tokens_to_ids("<pad>")
    hello = tok("Hello", add_special_tokens=False).input_ids
    seqs = [
        [], [1], [2], [0], [1, 2], [img], [pad], [1, img, 2],
        byte_ids(tok, "中".encode()), byte_ids(tok, "中文".encode()), byte_ids(tok, "😀".encode()),
        byte_ids(tok, b"\x0a"), byte_ids(tok, b"\x00"), byte_ids(tok, b"\x20"), byte_ids(tok, b"\x20\x20x"),
        byte_ids(tok, b"\x80"), byte_ids(tok, b"\xe4\xb8"), byte_ids(tok, b"\xc0\x80"), byte_ids(tok, b"\xed\xa0\x80"),
        byte_ids(tok, b"\xf5\x80\x80\x80"), byte_ids(tok, b"\xff"), byte_ids(tok, "中".encode() + b"\xff"),
        byte_ids(tok, "é".encode())[:1] + hello + byte_ids(tok, "é".encode())[1:],
        byte_ids(tok, b"\xe4") + [img] + byte_ids(tok, b"\xb8\xad"),
        byte_ids(tok, b"\xe4") + [1] + byte_ids(tok, b"\xb8\xad"),
        byte_ids(tok, b"\xe4") + [n + 5] + byte_ids(tok, b"\xb8\xad"),
        [28705], [28705, 28705], [28705] + hello, [1, 28705] + hello, byte_ids(tok, b" ") + hello,
        [1, img, 28705, 13] + hello, hello + [n + 100] + hello, [n, n + 1], [2**31 - 1],
    ]
    for _ in range(60):
        k = rng.randint(1, 30)
        s = []
        for _ in range(k):
            r = rng.random()
            if r < 0.3:
                s.append(rng.randint(3, 258))  # byte tokens
            elif r < 0.4:
                s.append(rng.choice([0, 1, 2, img, pad, 28705]))
            else:
                s.append(rng.randint(0, n - 1))
        seqs.append(s)
    return seqs


# ---- case records -----------------------------------------------------------------------------------

def text_record(key, s):
    rec = {key: s}
    if "\x00" in s:
        rec[key + "_hex"] = s.encode().hex()
    return rec


def encode_case(tok, s):
    ids = tok(s).input_ids
    nobos = tok(s, add_special_tokens=False).input_ids
    assert ids == [1] + nobos, (s, ids, nobos)  # the test relies on BOS being the only addition
    rec = text_record("text", s)
    rec["ids"] = ids
    rec.update(text_record("decoded", tok.decode(ids, skip_special_tokens=True)))
    rec.update(text_record("decoded_all", tok.decode(ids, skip_special_tokens=False)))
    return rec


def decode_case(tok, ids):
    rec = {"ids": ids}
    rec.update(text_record("decoded", tok.decode(ids, skip_special_tokens=True)))
    rec.update(text_record("decoded_all", tok.decode(ids, skip_special_tokens=False)))
    return rec


# ---- variants -------------------------------------------------------------------------------------------

REPLACE_SPACE = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
DEC_BASE = [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}]
DEC_STRIP = {"type": "Sequence", "decoders": DEC_BASE + [{"type": "Strip", "content": " ", "start": 1, "stop": 0}]}

VARIANTS = [
    # transformers >= 4.4x conversion without add_prefix_space: no Prepend, no Strip
    ("no-prefix", {"set": {"normalizer": {"type": "Sequence", "normalizers": [REPLACE_SPACE]},
                           "decoder": {"type": "Sequence", "decoders": DEC_BASE}}}),
    # legacy=False conversion: Metaspace pre-tokenizer, prepend only at the start of the input
    ("metaspace-first", {"set": {"normalizer": None, "decoder": DEC_STRIP,
                                 "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                                                   "prepend_scheme": "first", "split": False}}}),
    # Metaspace splitting into words, with the Metaspace decoder
    ("metaspace-split", {"set": {"normalizer": None,
                                 "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                                                   "prepend_scheme": "always", "split": True},
                                 "decoder": {"type": "Sequence", "decoders": [
                                     {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                      "split": True}, {"type": "ByteFallback"}, {"type": "Fuse"}]}}}),
    # no byte fallback: characters missing from the vocab become <unk>, fused or not
    ("unk-fused", {"set": {"model.byte_fallback": False, "model.fuse_unk": True}}),
    ("unk-unfused", {"set": {"model.byte_fallback": False, "model.fuse_unk": False}}),
    # extra added tokens: normalized (matched after normalisation), lstrip/rstrip, non-special
    ("added-tokens", {"append_added_tokens": [
        {"content": "hello world", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True,
         "special": False},
        {"content": "<|sep|>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False,
         "special": True},
        {"content": "[MARK]", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False,
         "special": False},
        {"content": "<|sep|>x", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": False},
        {"content": "\u2581cat", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True,
         "special": False},
    ]}),
]

ADDED_STRINGS = [
    "hello world", "say hello world now", "hello  world", "Hello world", "hello world<image>hello world",
    "a <|sep|> b", "a<|sep|>b", "  <|sep|>  ", "<|sep|>x", "<|sep|> x", "a [MARK]   b", "[MARK]\n\nz",
    "the cat sat", "cat", " cat", "concatenate", "a <|sep|><|sep|> b", "x\u3000<|sep|>\u3000y", "[MARK][MARK]",
]


def apply_patch(tj, patch):
    tj = copy.deepcopy(tj)
    for key, val in patch.get("set", {}).items():
        obj = tj
        parts = key.split(".")
        for p in parts[:-1]:
            obj = obj[p]
        obj[parts[-1]] = val
    # ids as `tokenizers` assigns them: the vocab id for a piece already in the vocab, else the next
    # id past the vocab and the added tokens
    vocab = tj["model"]["vocab"]
    next_id = max([t["id"] for t in tj["added_tokens"]] + [len(vocab) - 1]) + 1
    for t in patch.get("append_added_tokens", []):
        if t["content"] in vocab:
            tj["added_tokens"].append(dict(t, id=vocab[t["content"]]))
        else:
            tj["added_tokens"].append(dict(t, id=next_id))
            next_id += 1
    return tj


def load_variant(model_dir, tj, tmp):
    os.makedirs(tmp, exist_ok=True)
    for f in os.listdir(model_dir):
        if f.startswith("tokenizer") or f in ("special_tokens_map.json", "added_tokens.json"):
            shutil.copy(os.path.join(model_dir, f), tmp)
    with open(os.path.join(tmp, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    # added_tokens.json would re-add tokens by itself; tokenizer.json is the whole truth here
    if os.path.exists(os.path.join(tmp, "added_tokens.json")):
        os.remove(os.path.join(tmp, "added_tokens.json"))
    tok = AutoTokenizer.from_pretrained(tmp)
    assert tok.is_fast
    return tok


# ---- other tokenizer kinds (byte-level Llama-3, SentencePiece-style Yi) --------------------------------

EXTRA_STRINGS = [
    # the Llama-3 / GPT-2 split rules: contractions (case-insensitive in Llama-3), number groups,
    # punctuation runs with trailing newlines, whitespace runs before text and at the end
    "it's", "IT'S", "it'S", "they're we've I'm you'll he'd", "'s 't 're", "don't'll", "ſ 'ſ long s", "can'T",
    "1", "12", "123", "1234", "1234567", "3.14", "12,345,678", "a1b22c333d4444", "٣٤٥ Arabic-Indic digits",
    "Ⅻ roman ½ fraction", "!!!\n\n", "x...\r\n\r\ny", "?!\n", " !", "  !", "\t!", "a  b", "a   b", "a \n b",
    "trailing   ", "\n\n\n", " \n", "\n ", "\r", "\r\n", "\u3000\u3000x", "\u00a0x", "x\u2028y", "tab\there",
    "$100", "#hashtag", "@user", "{'json': [1, 2]}", "<|begin_of_text|>hi", "<|eot_id|><|eot_id|>",
    "<|im_start|>user\nhi<|im_end|>\n", "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
    "<image>\nWhat is this?", "A\u0301\u0302", "\U0001F600\U0001F600x", "Ġ Ċ ĉ", "Ā", "ÿ",
]


def generic_cases(tok, rng):
    """Encode (with and without the post-processor) and decode records for any tokenizer."""
    strings = FIXED + EXTRA_STRINGS + random_strings(rng) + long_strings(rng)
    enc = []
    for s in strings:
        ids = tok(s).input_ids
        nobos = tok(s, add_special_tokens=False).input_ids
        rec = text_record("text", s)
        rec["ids"], rec["ids_plain"] = ids, nobos
        rec.update(text_record("decoded", tok.decode(ids, skip_special_tokens=True)))
        rec.update(text_record("decoded_all", tok.decode(ids, skip_special_tokens=False)))
        enc.append(rec)
    # decode-only: random ids, and runs of the pieces that stand for single bytes (forming
    # invalid and truncated UTF-8)
    n = len(tok)
    vocab = tok.get_vocab()
    single = sorted(i for p, i in vocab.items() if len(p) == 1 or (p.startswith("<0x") and len(p) == 6))
    seqs = [[], [n], [n + 7, 0], list(range(min(n, 40)))]
    for _ in range(120):
        k = rng.randint(1, 24)
        seqs.append([rng.choice(single) if rng.random() < 0.6 else rng.randint(0, n - 1) for _ in range(k)])
    for bad in (b"\x80", b"\xe4\xb8", b"\xc0\x80", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xff\xfe",
                "中".encode() + b"\xff", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80\xf0", "é".encode()[:1] + b"a",
                b"\xe4", "😀".encode()):
        bi = byte_piece_ids(tok, bad)
        seqs += [bi, bi + tok("ok", add_special_tokens=False).input_ids, bi[:1] + [n - 1] + bi[1:]]
    dec = [decode_case(tok, ids) for ids in seqs]
    return enc, dec


def gpt2_byte_table():
    """GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest for U+0100.."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 256
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(extra)
            extra += 1
    return table


def byte_piece_ids(tok, data):
    """Ids of the pieces that stand for the single bytes of `data`."""
    vocab = tok.get_vocab()
    if "<0x41>" in vocab:
        return [vocab["<0x%02X>" % b] for b in data]
    t = gpt2_byte_table()
    return [vocab[t[b]] for b in data]


GENERIC_VARIANTS = {
    # byte-level: ByteLevel doing the GPT-2 split itself, with and without the prefix space
    "llama3": [("gpt2-regex", {"set": {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                                                         "trim_offsets": True, "use_regex": True}}}),
               ("gpt2-regex-prefix", {"set": {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True,
                                                                "trim_offsets": True, "use_regex": True}}}),
               ("no-post-processor", {"set": {"post_processor": None}})],
    # SentencePiece-style with the dummy prefix (as Llama/Mistral conversions) and a BOS
    "yi": [("prefix-bos", {"set": {"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"}, REPLACE_SPACE]},
        "decoder": DEC_STRIP,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<|startoftext|>": {"id": "<|startoftext|>", "ids": [1],
                                                                  "tokens": ["<|startoftext|>"]}}}}})],
}


def write_generic(model_dir, kind, out_path, seed):
    rng = random.Random(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.is_fast
    enc, dec = generic_cases(tok, rng)
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        base = json.load(f)
    variants = []
    subset = [r["text"] for i, r in enumerate(enc) if (i % 3 == 0 or len(r["text"]) < 4) and "text_hex" not in r][:160]
    # variants are run by the tokenizers library itself: transformers' tokenizer classes may
    # override a tokenizer.json setting from tokenizer_config.json (add_prefix_space,
    # add_bos_token), and what is tested here is the tokenizer.json semantics
    from tokenizers import Tokenizer
    for name, patch in GENERIC_VARIANTS.get(kind, []):
        vt = Tokenizer.from_str(json.dumps(apply_patch(base, patch)))
        recs = []
        for s in subset:
            rec = text_record("text", s)
            rec["ids"] = vt.encode(s, add_special_tokens=True).ids
            rec["ids_plain"] = vt.encode(s, add_special_tokens=False).ids
            rec.update(text_record("decoded", vt.decode(rec["ids"], skip_special_tokens=True)))
            rec.update(text_record("decoded_all", vt.decode(rec["ids"], skip_special_tokens=False)))
            recs.append(rec)
        variants.append({"name": name, "patch": patch, "encode": recs})
    out = {
        "about": "HF fast-tokenizer reference for test_tokenizer; written by tools/reference/make_tokenizer_cases.py",
        "transformers": transformers.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "model_dir": os.path.relpath(os.path.abspath(model_dir), ROOT),
        "kind": kind,
        "encode": enc,
        "decode": dec,
        "variants": variants,
    }
    with open(out_path, "w") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    n_var = sum(len(v["encode"]) for v in variants)
    print(f"{out_path}: {len(enc)} encode, {len(dec)} decode, {n_var} variant cases, {os.path.getsize(out_path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "tests/fixtures/models/llava-next-tiny"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/tokenizer/cases.json"))
    ap.add_argument("--kind", default="llama", choices=["llama", "yi", "llama3"],
                    help="llama: the original llava-next-tiny cases; yi / llama3: the generic cases for "
                         "the other tokenizer kinds (use with --model-dir and --out)")
    args = ap.parse_args()
    if args.kind != "llama":
        return write_generic(args.model_dir, args.kind, args.out, SEED + (1 if args.kind == "yi" else 2))

    rng = random.Random(SEED)
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    assert tok.is_fast, "need the fast (tokenizer.json) tokenizer"
    strings = FIXED + random_strings(rng) + long_strings(rng)
    strings += [q for q in QUESTIONS if q not in strings]
    templates = render_templates(tok)
    strings += [t["prompt"] for t in templates if t["prompt"] not in strings]

    with open(os.path.join(args.model_dir, "tokenizer.json")) as f:
        base = json.load(f)
    variants = []
    subset = [s for i, s in enumerate(strings) if i % 3 == 0 or "<" in s or len(s) < 4][:160]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, patch) in enumerate(VARIANTS):
            vt = load_variant(args.model_dir, apply_patch(base, patch), os.path.join(tmp, str(i)))
            extra = ADDED_STRINGS if name == "added-tokens" else []
            variants.append({"name": name, "patch": patch, "encode": [encode_case(vt, s) for s in subset + extra]})

    out = {
        "about": "HF fast-tokenizer reference for test_tokenizer; written by tools/reference/make_tokenizer_cases.py",
        "transformers": transformers.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "model_dir": os.path.relpath(os.path.abspath(args.model_dir), ROOT),
        "encode": [encode_case(tok, s) for s in strings],
        "decode": [decode_case(tok, ids) for ids in decode_sequences(tok, rng)],
        "variants": variants,
        "templates": templates,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    n_var = sum(len(v["encode"]) for v in variants)
    print(f"{args.out}: {len(out['encode'])} encode, {len(out['decode'])} decode, {n_var} variant cases, "
          f"{os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    sys.exit(main())
