"""Writes a tiny randomly initialised BERT classifier (2 layers, hidden 32) with the labels,
Parley settings and tokenizer of a real model directory, so that `parley run` loads it with
the same knowledge base: the service's work without the cost of a real model.

    python bench/compare/tiny_model.py models/intent-en OUT_DIR

The same shape as `write_tiny_classifier` in tests/common/mod.rs, written by transformers'
save_pretrained.
"""

import json
import shutil
import sys

import torch
from transformers import BertConfig, BertForSequenceClassification

src, out = sys.argv[1], sys.argv[2]
with open(f"{src}/config.json") as f:
    real = json.load(f)
labels = [real["id2label"][str(i)] for i in range(len(real["id2label"]))]
torch.manual_seed(0)
cfg = BertConfig(vocab_size=real["vocab_size"], hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                 id2label=dict(enumerate(labels)),
                 label2id={label: i for i, label in enumerate(labels)})
cfg.parley = real.get("parley", {})
BertForSequenceClassification(cfg).save_pretrained(out)
for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(f"{src}/{name}", f"{out}/{name}")
