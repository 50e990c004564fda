#!/usr/bin/env python3
"""Turns a BERT encoder exported to ONNX (as Xenova/optimum export it: the embeddings and
biases under their Hugging Face names, each linear layer's weight an anonymous MatMul input)
into a Hugging Face directory that `parley train --base` and `retrieval.encoder` load:
model.safetensors, config.json and the tokenizer.

Used for bge-small-en-v1.5 and e5-small-v2, whose weights Maven Central ships inside
langchain4j's embedding jars (see docs/clinc150.md). Needs the Python packages onnx and numpy,
and safetensors.

    python3 scripts/onnx-bert-to-hf.py MODEL.onnx TOKENIZER.json OUT_DIR [cls|mean]

The optional last argument writes the sentence pooling the encoder was trained with into
OUT_DIR/1_Pooling/config.json (sentence-transformers' file, which `retrieval.encoder` reads;
without it Parley takes the mean). bge-small-en-v1.5 was trained with `cls`, e5-small-v2 with
`mean`; scripts/setup.sh writes `mean` for bge, which did as well on Parley's dev questions.
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file


def convert(onnx_path: str, tokenizer: str, out: str) -> None:
    graph = onnx.load(onnx_path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    tensors = {k: v for k, v in inits.items() if not k.startswith("onnx::")}
    # A linear layer is MatMul(x, W) then Add(bias): the bias keeps its Hugging Face name,
    # so the weight is named after it (and transposed: ONNX stores it as in x out).
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        biases = [
            name
            for add in consumers.get(node.output[0], [])
            if add.op_type == "Add"
            for name in add.input
            if name in inits and name.endswith(".bias")
        ]
        if len(biases) != 1:
            sys.exit(f"{onnx_path}: cannot name the weight of {node.name} (biases {biases})")
        tensors[biases[0][: -len(".bias")] + ".weight"] = inits[node.input[1]].T
    hidden = tensors["embeddings.word_embeddings.weight"].shape[1]
    layers = len({k.split(".")[2] for k in tensors if k.startswith("encoder.layer.")})
    for i in range(layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            if f"encoder.layer.{i}.{part}.weight" not in tensors:
                sys.exit(f"{onnx_path}: layer {i} has no {part} weight")
    # Exports of the last hidden state drop the pooler, which a BERT checkpoint carries:
    # an identity stands in (a classifier trained on it learns its own head).
    if "pooler.dense.weight" not in tensors:
        tensors["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
        tensors["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    os.makedirs(out, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              os.path.join(out, "model.safetensors"))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": tensors["embeddings.word_embeddings.weight"].shape[0],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        # Both models named above use heads of 32 dimensions.
        "num_attention_heads": hidden // 32,
        "intermediate_size": tensors["encoder.layer.0.intermediate.dense.weight"].shape[0],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": tensors["embeddings.position_embeddings.weight"].shape[0],
        "type_vocab_size": tensors["embeddings.token_type_embeddings.weight"].shape[0],
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
    print(f"{out}: {layers} layers, hidden {hidden}, {len(tensors)} tensors")


def write_pooling(out: str, pooling: str) -> None:
    if pooling not in ("cls", "mean"):
        sys.exit(f"pooling must be cls or mean, not {pooling!r}")
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"pooling_mode_cls_token": pooling == "cls",
                   "pooling_mode_mean_tokens": pooling == "mean"}, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    convert(*sys.argv[1:4])
    if len(sys.argv) == 5:
        write_pooling(sys.argv[3], sys.argv[4])
