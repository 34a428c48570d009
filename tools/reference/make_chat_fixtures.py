#!/usr/bin/env python3
"""Write tests/fixtures/llm/chat/<model>/<case>.safetensors: transformers' prompt, logits and greedy
tokens for conversations through a checkpoint's own chat template, for test_llm's "chat" mode.

    tools/reference/.venv/bin/python tools/reference/make_chat_fixtures.py [--fixtures tests/fixtures]

Models: llava-next-yi-tiny (ChatML template, SentencePiece-style tokenizer, <|im_end|> EOS) and
llava-next-llama3-tiny (Llama-3 template, byte-level tokenizer, two EOS ids); see
tiny_models_more.py. Both are loaded in float32 with eager attention and the slow image processor.
Cases (stock transformers, budget 1.0, image_newline after every row):
  single        one user turn: an image and a question;
  text          a system message and a text-only user turn (no image);
  multi_turn    system, user (image + question), assistant answer, user follow-up;
  two_images    one user turn with two images of different grids and a question.
Each: processor.apply_chat_template(conversation, add_generation_prompt=True) renders the prompt,
processor(images=..., text=prompt) expands every <image>, model(**inputs) gives the logits, and
generate(do_sample=False, max_new_tokens=32, min_new_tokens=32) the tokens (every EOS id masked).

Layout (as make_llm_fixtures.py): prompt_ids [T] (the unexpanded prompt, one <image> per image),
cols [C], full_hf.positions [P], full_hf.logits [P, C], full_hf.tokens [32], full_hf.margins [32];
metadata: format "hired-chat", version "1", model, case, images (comma-separated file names under
images/), messages (the conversation as JSON, content parts {"type": "image"} / {"type": "text"}),
prompt, cases "full_hf", full_hf.n_image, full_hf.length.
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_llm_fixtures import N_NEW, greedy, stored_positions  # noqa: E402

MODELS = ["llava-next-yi-tiny", "llava-next-llama3-tiny"]
IMG = {"type": "image"}


def T(s):
    return {"type": "text", "text": s}


CASES = [
    ("single", ["astronaut.png"], [{"role": "user", "content": [IMG, T("What is shown in this image?")]}]),
    ("text", [], [{"role": "system", "content": [T("You are a helpful assistant. Answer in one sentence.")]},
                  {"role": "user", "content": [T("Why is the sky blue?")]}]),
    ("multi_turn", ["coffee_wide.jpg"], [
        {"role": "system", "content": [T("Be concise.")]},
        {"role": "user", "content": [IMG, T("What is in the cup?")]},
        {"role": "assistant", "content": [T("Coffee with latte art.")]},
        {"role": "user", "content": [T("And the colour of the saucer?")]}]),
    ("two_images", ["coffee_wide.jpg", "camera_gray.png"],
     [{"role": "user", "content": [IMG, IMG, T("What differs between these two pictures?")]}]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    args = ap.parse_args()
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, LlavaNextForConditionalGeneration, LlavaNextImageProcessor, LlavaNextProcessor

    fx = os.path.normpath(args.fixtures)
    torch.manual_seed(0)
    total = 0
    for name in MODELS:
        mdir = os.path.join(fx, "models", name)
        tok = AutoTokenizer.from_pretrained(mdir)
        ip = LlavaNextImageProcessor.from_pretrained(mdir)
        with open(os.path.join(mdir, "chat_template.json")) as f:
            tpl = json.load(f)["chat_template"]
        proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14, chat_template=tpl,
                                  vision_feature_select_strategy="default", num_additional_image_tokens=1)
        model = LlavaNextForConditionalGeneration.from_pretrained(mdir, torch_dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
        image_id = model.config.image_token_index
        V = model.config.text_config.vocab_size
        cols = torch.arange(0, V, max(1, V // 256))
        out_dir = os.path.join(fx, "llm", "chat", name)
        os.makedirs(out_dir, exist_ok=True)
        for cname, files, conv in CASES:
            prompt = proc.apply_chat_template(conv, add_generation_prompt=True)
            assert prompt == tok.apply_chat_template(conv, chat_template=tpl, add_generation_prompt=True, tokenize=False)
            prompt_ids = tok(prompt).input_ids
            assert prompt_ids.count(image_id) == len(files), (prompt_ids, files)
            images = [Image.open(os.path.join(fx, "images", f)).convert("RGB") for f in files]
            with torch.no_grad():
                inputs = proc(images=images or None, text=prompt, return_tensors="pt")
                inputs.pop("token_type_ids", None)
                ids = inputs["input_ids"][0].tolist()
                n_image = ids.count(image_id)
                logits = model(**inputs).logits[0]
                seq, margins = greedy(model, **inputs)
            first = prompt_ids.index(image_id) if files else len(ids)
            pos = stored_positions(first, n_image, len(ids)) if files else list(range(len(ids)))
            if files:  # every text position of the expanded sequence too
                pos = sorted(set(pos) | {i for i, t in enumerate(ids) if t != image_id})
            tensors = {"prompt_ids": torch.tensor(prompt_ids, dtype=torch.float32), "cols": cols.float(),
                       "full_hf.positions": torch.tensor(pos, dtype=torch.float32),
                       "full_hf.logits": logits[pos][:, cols].contiguous().float(),
                       "full_hf.tokens": torch.tensor(seq, dtype=torch.float32),
                       "full_hf.margins": torch.tensor(margins, dtype=torch.float32)}
            meta = {"format": "hired-chat", "version": "1", "model": name, "case": cname, "images": ",".join(files),
                    "messages": json.dumps(conv, ensure_ascii=False), "prompt": prompt, "cases": "full_hf",
                    "full_hf.n_image": str(n_image), "full_hf.length": str(len(ids))}
            path = os.path.join(out_dir, cname + ".safetensors")
            save_file(tensors, path, metadata=meta)
            total += os.path.getsize(path)
            print("%s/%s: %d images, %d packed, length %d, smallest greedy margin %.3g, tokens %s..." % (
                name, cname, len(files), n_image, len(ids), min(margins), seq[:6]))
    print("wrote %.2f MB" % (total / 1e6))
    assert N_NEW == 32


if __name__ == "__main__":
    main()
