"""Trains logistic regression with numpy; checkpoints every epoch and resumes from the last one.

The checkpoint lives in $ALLOT_CHECKPOINT_DIR, which allot keeps in its store and restores before
each attempt of the step, on whichever node it runs, so a preempted or restarted step continues from
its last finished epoch. --data and --model default to the step's `data` input ($ALLOT_INPUT_DATA)
and `model` output ($ALLOT_OUTPUT_MODEL).
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np

stop = False


def on_term(signum, frame):  # noqa: ARG001
    global stop
    stop = True
    print("received SIGTERM; finishing the current batch and exiting", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    data_default = os.environ.get("ALLOT_INPUT_DATA")
    model_default = os.environ.get("ALLOT_OUTPUT_MODEL")
    parser.add_argument("--data", default=data_default, required=data_default is None)
    parser.add_argument("--model", default=model_default, required=model_default is None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-seconds", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)

    data = np.load(args.data)
    x, y = data["x_train"], data["y_train"]
    ckpt_dir = os.environ.get("ALLOT_CHECKPOINT_DIR", os.path.dirname(os.path.abspath(args.model)))
    os.makedirs(ckpt_dir, exist_ok=True)
    ckpt = os.path.join(ckpt_dir, "checkpoint.npz")

    w = np.zeros(x.shape[1])
    b = 0.0
    start_epoch = 0
    if os.path.exists(ckpt):
        state = np.load(ckpt)
        w, b, start_epoch = state["w"], float(state["b"]), int(state["epoch"])
        print(f"resuming from checkpoint at epoch {start_epoch}", flush=True)
    print(
        f"training on GPUs [{os.environ.get('CUDA_VISIBLE_DEVICES', '')}] "
        f"attempt {os.environ.get('ALLOT_ATTEMPT', '1')}",
        flush=True,
    )

    def loss_of(w, b):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        return float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))

    # A run that resumes after its last epoch (stopped just after checkpointing it) trains no more:
    # its loss is the checkpoint's, not NaN, which JSON cannot carry.
    loss = loss_of(w, b)
    for epoch in range(start_epoch, args.epochs):
        began = time.time()
        for _ in range(20):
            z = x @ w + b
            p = 1.0 / (1.0 + np.exp(-z))
            grad = p - y
            w -= args.lr * (x.T @ grad) / len(y)
            b -= args.lr * float(grad.mean())
        loss = float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        while time.time() - began < args.epoch_seconds and not stop:
            time.sleep(0.05)
        tmp = ckpt + ".tmp.npz"
        np.savez(tmp, w=w, b=b, epoch=epoch + 1)
        os.replace(tmp, ckpt)
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f}", flush=True)
        if stop:
            print(f"checkpointed epoch {epoch + 1}; exiting on SIGTERM", flush=True)
            sys.exit(143)

    np.savez(args.model, w=w, b=b)
    outputs = {"epochs": args.epochs, "resumedFrom": start_epoch, "loss": loss}
    if "ALLOT_OUTPUT" in os.environ:
        with open(os.environ["ALLOT_OUTPUT"], "w") as f:
            json.dump(outputs, f)
    print(f"saved model to {args.model}", flush=True)


if __name__ == "__main__":
    main()
