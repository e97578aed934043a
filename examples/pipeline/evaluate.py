"""Evaluates the trained model on the held-out split.

--data and --model default to the step's inputs of those names ($ALLOT_INPUT_DATA, $ALLOT_INPUT_MODEL).
"""
import argparse
import json
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("data", "model"):
        default = os.environ.get(f"ALLOT_INPUT_{name.upper()}")
        parser.add_argument(f"--{name}", default=default, required=default is None)
    args = parser.parse_args()
    data = np.load(args.data)
    model = np.load(args.model)
    z = data["x_test"] @ model["w"] + float(model["b"])
    accuracy = float(np.mean((z > 0) == (data["y_test"] > 0.5)))
    print(f"test accuracy {accuracy:.3f}", flush=True)
    if "ALLOT_OUTPUT" in os.environ:
        with open(os.environ["ALLOT_OUTPUT"], "w") as f:
            json.dump({"accuracy": accuracy}, f)


if __name__ == "__main__":
    main()
