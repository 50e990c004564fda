"""The Python stack a shop would write for Parley's job, as the comparison baseline.

A confluent-kafka consumer (read_committed, no auto commit) on the inbound topic, batches of
up to 32 messages, batched transformers classification of the same model directory, and a
transactional producer writing one JSON reply per message (Parley's reply shape) with the
batch's offsets committed in the same transaction.

    python bench/compare/service.py --brokers 127.0.0.1:9092 --model models/intent-en

Prints "ready" to stderr once it has partitions, and a line per 10 s of work.
"""

import argparse
import datetime
import json
import os
import signal
import sys
import time
import uuid

import torch
import yaml
from confluent_kafka import Consumer, KafkaException, Producer
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="localhost:9092")
    p.add_argument("--topic-inbound", default="chat.inbound")
    p.add_argument("--topic-replies", default="chat.replies")
    p.add_argument("--group-id", default="python-service")
    p.add_argument("--transactional-id", default=None, help="default: GROUP-0")
    p.add_argument("--model", default="models/intent-en")
    p.add_argument("--answers", default="kb/answers.yaml",
                   help="intent -> answer text (YAML with an 'answers' map); '' for none")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--poll-timeout", type=float, default=0.02,
                   help="seconds consume() waits to fill a batch")
    p.add_argument("--max-length", type=int, default=64, help="token limit (Parley's max_seq_len)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch threads (default: every CPU this process may use, as Parley)")
    return p.parse_args()


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def classify(model, batch, mean_pooling):
    """Logits of a BertForSequenceClassification; with mean pooling as the model was trained."""
    if not mean_pooling:
        return model(**batch).logits
    out = model.bert(**batch)
    m = batch["attention_mask"].unsqueeze(-1).float()
    mean = (out.last_hidden_state * m).sum(1) / m.sum(1)
    return model.classifier(model.bert.pooler.activation(model.bert.pooler.dense(mean)))


def main():
    a = parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, dtype=torch.float32)
    model.eval()
    labels = model.config.id2label
    # Parley's models say how they pool (models/intent-en/README.md, "Using it outside Parley").
    mean_pooling = (getattr(model.config, "parley", None) or {}).get("pooling") == "mean"
    answers = {}
    if a.answers:
        with open(a.answers) as f:
            answers = (yaml.safe_load(f) or {}).get("answers", {})

    consumer = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": a.group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    producer = Producer({
        "bootstrap.servers": a.brokers,
        "transactional.id": a.transactional_id or f"{a.group_id}-0",
        "linger.ms": 2,
    })
    producer.init_transactions()

    ready = False

    def on_assign(c, partitions):
        nonlocal ready
        if partitions and not ready:
            ready = True
            print(f"service.py: ready ({len(partitions)} partitions)", file=sys.stderr, flush=True)

    consumer.subscribe([a.topic_inbound], on_assign=on_assign)
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    total, window, window_start = 0, 0, time.monotonic()
    while running:
        msgs = consumer.consume(num_messages=a.batch_size, timeout=a.poll_timeout)
        if not msgs:
            continue
        inbound = []
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            try:
                inbound.append(json.loads(m.value()))
            except (TypeError, ValueError):
                inbound.append(None)  # not JSON: skipped, its offset still committed
        good = [i for i in inbound if i and "text" in i and "message_id" in i]

        intents, confidences = [], []
        if good:
            enc = tokenizer([i["text"] for i in good], padding="longest", truncation=True,
                            max_length=a.max_length, return_tensors="pt")
            with torch.inference_mode():
                probs = classify(model, enc, mean_pooling).softmax(dim=-1)
            conf, idx = probs.max(dim=-1)
            intents = [labels[int(k)] for k in idx]
            confidences = [float(c) for c in conf]

        try:
            producer.begin_transaction()
            for msg, intent, confidence in zip(good, intents, confidences):
                reply = {
                    "reply_id": str(uuid.uuid4()),
                    "conversation_id": msg.get("conversation_id"),
                    "in_reply_to": msg["message_id"],
                    "text": answers.get(intent, "Thanks for your message, we'll look into it."),
                    "intent": intent,
                    "confidence": confidence,
                    "author": "bot",
                    "created_at": now(),
                }
                producer.produce(a.topic_replies, key=msg.get("conversation_id"),
                                 value=json.dumps(reply))
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata())
            producer.commit_transaction()
        except KafkaException as e:
            err = e.args[0]
            if not err.txn_requires_abort():
                raise
            # Abort and go back to the last committed offsets: the batch is read again.
            producer.abort_transaction()
            for tp in consumer.committed(consumer.assignment()):
                if tp.offset >= 0:
                    consumer.seek(tp)
            continue

        total += len(msgs)
        window += len(msgs)
        if time.monotonic() - window_start >= 10:
            secs = time.monotonic() - window_start
            print(f"service.py: {total} messages, {window / secs:.0f} msgs/s",
                  file=sys.stderr, flush=True)
            window, window_start = 0, time.monotonic()

    consumer.close()


if __name__ == "__main__":
    main()
