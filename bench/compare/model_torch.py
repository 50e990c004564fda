#!/usr/bin/env python3
"""The Python stack's side of `parley bench`: the same model directory, classified with PyTorch
and Hugging Face transformers, measured the way `parley bench --json` measures (src/bench.rs,
`throughput`).

What is identical to `parley bench`:
  * the model directory (config.json, model.safetensors, tokenizer.json), computed in f32
    (Parley converts the f16 checkpoint to f32 on the CPU; so does `dtype=torch.float32` here);
  * the texts: the 16 `SAMPLE_MESSAGES` of src/bench.rs, read from `parley bench
    --print-messages`, never copied;
  * the batch: the 16 texts cycled until `batch` of them (`messages.iter().cycle().take(b)`),
    the same batch classified over and over;
  * the padding and truncation policy: pad to the longest text of the batch, truncate to
    `parley.max_seq_len` of config.json (64 when absent), whatever tokenizer.json itself says
    (Parley overrides its padding and truncation the same way);
  * the head: `parley.pooling` of config.json (`mean` for intent-en: masked mean of the last
    hidden states, then BERT's pooler dense + tanh, then the classifier; `cls` is plain
    `BertForSequenceClassification`);
  * what one classification includes: tokenising, the forward pass, softmax, and turning each
    row into a label with its top-3 (Parley's `classify` returns `Prediction`s);
  * the clock: one warm-up call, then loop while less than `seconds` have passed or fewer than
    two batches were done; each turn tokenises the batch once on its own (timed) and then
    classifies it; the rate is messages done over (loop time minus the separate tokenising);
  * all cores: torch's intra-op threads = the CPUs this process may run on (Parley's rayon
    pool and GEMM use `available_parallelism`, the same number).

Prints `{"<batch>": msgs_per_s, ...}` as the one line on stdout; details go to stderr.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/intent-en", help="model directory (HF layout)")
    p.add_argument("--batch-sizes", default="1,8,32,128", help="comma-separated")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum seconds per measurement")
    p.add_argument(
        "--messages",
        help="JSON file with the texts; default: ask `PARLEY --print-messages`",
    )
    p.add_argument(
        "--parley",
        default=os.path.join(
            os.environ.get("CARGO_TARGET_DIR", "target"), "release", "parley"
        ),
        help="the parley binary, used for --print-messages when --messages is not given",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads; default: every CPU this process may use",
    )
    p.add_argument(
        "--predict",
        action="store_true",
        help="print one JSON line per text (text, intent, confidence) and exit",
    )
    return p.parse_args()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def main():
    a = parse_args()
    if a.messages:
        with open(a.messages) as f:
            messages = json.load(f)
    else:
        out = subprocess.run(
            [a.parley, "bench", "--print-messages"], check=True, capture_output=True, text=True
        ).stdout
        messages = json.loads(out)
    assert isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory; nothing to fetch
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(a.threads or cores)

    with open(os.path.join(a.model, "config.json")) as f:
        parley_cfg = json.load(f).get("parley") or {}
    max_len = int(parley_cfg.get("max_seq_len", 64))
    pooling = parley_cfg.get("pooling", "cls")

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, dtype=torch.float32)
    model.eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pooler = model.bert.pooler
    if pooling == "mean":
        # BertModel skips its own ([CLS]) pooler when it has none; the head below applies it
        # to the masked mean instead, as Parley does.
        model.bert.pooler = None
    elif pooling != "cls":
        sys.exit(f"unknown parley.pooling {pooling!r}")

    log(
        f"pytorch {torch.__version__}, transformers {transformers.__version__}, "
        f"torch threads {torch.get_num_threads()} (cores {cores}), "
        f"attention {model.config._attn_implementation}, pooling {pooling}, "
        f"max_seq_len {max_len}, dtype {next(model.parameters()).dtype}"
    )

    def encode(batch):
        return tok(
            batch,
            padding="longest",
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )

    def logits_of(enc):
        if pooling == "cls":
            return model(**enc).logits
        hidden = model.bert(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return model.classifier(torch.tanh(pooler.dense(mean)))  # dropout: identity in eval

    def classify(batch):
        enc = encode(batch)
        probs = torch.softmax(logits_of(enc), dim=-1)
        p, i = probs.topk(3, dim=-1)
        p, i = p.tolist(), i.tolist()
        return [
            (labels[ii[0]], pp[0], [(labels[k], x) for k, x in zip(ii, pp)])
            for pp, ii in zip(p, i)
        ]

    with torch.inference_mode():
        if a.predict:
            for text, (intent, conf, _) in zip(messages, classify(messages)):
                print(json.dumps({"text": text, "intent": intent, "confidence": round(conf, 4)}))
            return

        result = {}
        for b in [max(1, int(x)) for x in a.batch_sizes.split(",") if x.strip()]:
            batch = [messages[i % len(messages)] for i in range(b)]
            padded = encode(batch)["input_ids"].shape[1]
            classify(batch)  # warm-up
            done, tokenize = 0, 0.0
            start = time.perf_counter()
            while time.perf_counter() - start < a.seconds or done < 2 * b:
                t = time.perf_counter()
                encode(batch)
                tokenize += time.perf_counter() - t
                classify(batch)
                done += b
            total = time.perf_counter() - start - tokenize
            rate = done / total
            result[str(b)] = rate
            log(
                f"batch {b:>4}: {rate:10.1f} msgs/s, padded to {padded} tokens, "
                f"tokenize {100 * tokenize / total:.1f}% of the time"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
