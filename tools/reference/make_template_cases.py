#!/usr/bin/env python3
"""Write tests/fixtures/templates/cases.json: what transformers' apply_chat_template (Python
jinja2, transformers' environment: trim_blocks, lstrip_blocks, loopcontrols, {% generation %},
its own tojson) renders for every template under tests/fixtures/templates/ and a set of
conversations, for test_template to compare against.

    tools/reference/.venv/bin/python tools/reference/make_template_cases.py

Templates (tests/fixtures/templates/*.jinja, the template text alone):
  llava-1.5-7b-hf, llava-v1.6-vicuna-7b-hf, llava-v1.6-mistral-7b-hf, llava-v1.6-34b-hf,
  llama3-llava-next-8b-hf   the llava-hf processors' templates (message content = a list of
                            {"type": "image"} / {"type": "text", "text": ...} parts);
  Mistral-7B-Instruct-v0.2, Meta-Llama-3-8B-Instruct, Yi-34B-Chat
                            the text models' tokenizer templates (content = one string, an image
                            written as "<image>\\n" in it, as hired does for tokenizer templates);
  features                  a template written to exercise the interpreter (both content forms).
Conversations: single turn with one image, text only, system prompt, multi-turn with assistant
answers, several images in one message and across messages, empty and non-ASCII text, with and
without add_generation_prompt. A render that raises (raise_exception) is recorded as
{"error": message}: hired must fail too, with the same message.
The C build and tests never run this script.
"""

import argparse
import glob
import json
import os

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEXT_TEMPLATES = {"Mistral-7B-Instruct-v0.2", "Meta-Llama-3-8B-Instruct", "Yi-34B-Chat"}
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>"}

I = {"type": "image"}


def T(s):
    return {"type": "text", "text": s}


CONVERSATIONS = [
    ("single", [{"role": "user", "content": [I, T("What is shown in this image?")]}]),
    ("single-text-first", [{"role": "user", "content": [T("Describe this:"), I]}]),
    ("text-only", [{"role": "user", "content": [T("Write a haiku about the sea.")]}]),
    ("empty-text", [{"role": "user", "content": [I, T("")]}]),
    ("system", [{"role": "system", "content": [T("You are a careful assistant. Answer briefly.")]},
                {"role": "user", "content": [I, T("What colour is the car?")]}]),
    ("multi-turn", [{"role": "user", "content": [I, T("What is in the picture?")]},
                    {"role": "assistant", "content": [T("A cat sitting on a sofa.")]},
                    {"role": "user", "content": [T("What colour is the cat?")]}]),
    ("system-multi-turn", [{"role": "system", "content": [T("Be concise.")]},
                           {"role": "user", "content": [T("Hi!")]},
                           {"role": "assistant", "content": [T("Hello. How can I help?")]},
                           {"role": "user", "content": [I, T("  Count the birds.  \n")]}]),
    ("two-images", [{"role": "user", "content": [I, I, T("What differs between these two images?")]}]),
    ("images-across-turns", [{"role": "user", "content": [I, T("Remember this one.")]},
                             {"role": "assistant", "content": [T("OK.")]},
                             {"role": "user", "content": [I, T("Is this the same place?")]}]),
    ("three-images-interleaved", [{"role": "user", "content": [T("First:"), I, T("second:"), I, I, T("and a third.")]}]),
    ("unicode", [{"role": "user", "content": [I, T("Qu'est-ce que c'est ? 这是什么？ 😀\n\tTabs and\r\nCRLF")]}]),
    ("assistant-last", [{"role": "user", "content": [I, T("Caption it.")]},
                        {"role": "assistant", "content": [T("A red bus")]}]),
    ("quotes-braces", [{"role": "user", "content": [T("Use {{ braces }} and {% tags %} and 'quotes' \"too\".")]}]),
]


def as_text_content(conv):
    out = []
    for m in conv:
        s = "".join("<image>\n" if p["type"] == "image" else p["text"] for p in m["content"])
        out.append({"role": m["role"], "content": s})
    return out


def render(tok, src, conv, gen):
    try:
        return {"prompt": tok.apply_chat_template(conv, chat_template=src, tokenize=False,
                                                  add_generation_prompt=gen)}
    except Exception as e:  # raise_exception in the template
        return {"error": str(e)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "tests/fixtures/templates"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "tests/fixtures/models/llava-next-tiny"))
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    assert tok.bos_token == SPECIALS["bos_token"] and tok.eos_token == SPECIALS["eos_token"]
    cases = []
    for path in sorted(glob.glob(os.path.join(args.dir, "*.jinja"))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            src = f.read()
        modes = [False, True] if name == "features" else [name not in TEXT_TEMPLATES]
        for content_list in modes:
            for cname, conv in CONVERSATIONS:
                c = conv if content_list else as_text_content(conv)
                for gen in (True, False):
                    rec = {"template": os.path.basename(path), "content_list": content_list, "conversation": cname,
                           "add_generation_prompt": gen}
                    rec.update(render(tok, src, c, gen))
                    cases.append(rec)
    out = {
        "about": "apply_chat_template reference for test_template; written by tools/reference/make_template_cases.py",
        "transformers": __import__("transformers").__version__,
        "jinja2": __import__("jinja2").__version__,
        "specials": SPECIALS,
        "conversations": [{"name": n, "messages": c} for n, c in CONVERSATIONS],
        "cases": cases,
    }
    dst = os.path.join(args.dir, "cases.json")
    with open(dst, "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    n_err = sum("error" in c for c in cases)
    print(f"{dst}: {len(cases)} renders ({n_err} raise) over {len(set(c['template'] for c in cases))} templates")


if __name__ == "__main__":
    main()
