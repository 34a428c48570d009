#!/usr/bin/env python3
"""Write the Yi/ChatML-style and Llama-3-style fixtures (see tiny_models_more.py):

    tools/reference/.venv/bin/python tools/reference/make_more_fixtures.py [--fixtures tests/fixtures]

  models/llava-next-yi-tiny/, models/llava-next-llama3-tiny/   the checkpoints (float16 weights,
        tokenizer.json + tokenizer_config.json, chat_template.json, generation_config.json);
  tokenizer/yi_cases.json, tokenizer/llama3_cases.json          HF fast-tokenizer reference
        (make_tokenizer_cases.py --kind yi / llama3).
The language-model references for these models come from make_llm_fixtures.py --chat.
Checks (the run fails loudly otherwise): each checkpoint reloads with no missing or unexpected
keys and bit-identical logits; the tokenizer reloads from the saved files and encodes as built.
Deterministic with the pinned versions.
"""

import argparse
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tiny_models_more as tmm  # noqa: E402
from transformers import AutoTokenizer, LlavaNextForConditionalGeneration  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    args = ap.parse_args()
    fx = os.path.normpath(args.fixtures)
    for kind, name, make_tok, tpl_file, seed in (
            ("yi", tmm.YI_DIR, tmm.make_yi_tokenizer, tmm.CHATML_TEMPLATE_FILE, 34),
            ("llama3", tmm.LLAMA3_DIR, tmm.make_llama3_tokenizer, tmm.LLAMA3_TEMPLATE_FILE, 8)):
        tok = make_tok()
        with open(os.path.join(fx, "templates", tpl_file)) as f:
            tpl = f.read()
        model = tmm.build(kind, tok, seed)
        mdir = os.path.join(fx, "models", name)
        tmm.save(model, kind, mdir, tok, tpl)
        again = LlavaNextForConditionalGeneration.from_pretrained(mdir, torch_dtype=torch.float32,
                                                                   attn_implementation="eager",
                                                                   output_loading_info=True)
        re_model, info = again
        assert not any(info.values()), info
        ids = torch.tensor([tok("Hello there, what is this?").input_ids])
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, re_model(input_ids=ids).logits)
        t2 = AutoTokenizer.from_pretrained(mdir)
        probe = "Hello world, it's 2024! 你好 😀 <image>\n"
        assert t2(probe).input_ids == tok(probe).input_ids, (t2(probe).input_ids, tok(probe).input_ids)
        size = sum(os.path.getsize(os.path.join(mdir, f)) for f in os.listdir(mdir))
        print("%s: %d ids, config vocab %d, image id %d, %.2f MB" % (name, len(tok), model.config.text_config.vocab_size,
                                                                  model.config.image_token_index, size / 1e6))
        subprocess.run([sys.executable, os.path.join(HERE, "make_tokenizer_cases.py"), "--kind", kind,
                        "--model-dir", mdir, "--out", os.path.join(fx, "tokenizer", "%s_cases.json" % kind)],
                       check=True)


if __name__ == "__main__":
    main()
