"""Makes a synthetic, linearly separable-ish classification data set and saves it.

It writes to --out, by default where allot says its `data` output goes ($ALLOT_OUTPUT_DATA).
"""
import argparse
import json
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    default_out = os.environ.get("ALLOT_OUTPUT_DATA")
    parser.add_argument("--out", default=default_out, required=default_out is None)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    true_w = rng.normal(size=args.features)
    x = rng.normal(size=(args.samples, args.features))
    y = (x @ true_w + rng.normal(scale=0.5, size=args.samples) > 0).astype(np.float64)
    split = int(args.samples * 0.8)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, x_train=x[:split], y_train=y[:split], x_test=x[split:], y_test=y[split:])
    print(f"prepared {args.samples} samples with {args.features} features -> {args.out}", flush=True)
    if "ALLOT_OUTPUT" in os.environ:
        with open(os.environ["ALLOT_OUTPUT"], "w") as f:
            json.dump({"samples": args.samples, "features": args.features, "path": args.out}, f)


if __name__ == "__main__":
    main()
