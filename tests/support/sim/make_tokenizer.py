"""Writes a small word-level Hugging Face tokenizer for the benchmark proof, built here from the Shakespeare text
that ships with inference-perf: the proof runs with no network, so DeepSeek-R1's tokenizer cannot be fetched.
Token counts therefore differ from the real model's; the README says the proof's numbers are the simulator's.
Run with the inference-perf venv's Python: make_tokenizer.py OUT_DIR"""
import os
import re
import sys

import inference_perf
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

out = sys.argv[1]
with open(os.path.join(os.path.dirname(inference_perf.__file__), "assets", "shakespeare.txt")) as f:
    words = sorted(set(re.findall(r"\w+|[^\w\s]", f.read())))
vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2}
for word in words:
    vocab.setdefault(word, len(vocab))
core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
core.pre_tokenizer = pre_tokenizers.Whitespace()
PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", bos_token="<s>", eos_token="</s>",
                        model_max_length=1_000_000).save_pretrained(out)
print("%s: %d tokens" % (out, len(vocab)))
