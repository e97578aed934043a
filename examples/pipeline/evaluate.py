"""Evaluates the trained model on the held-out split."""
import argparse
import json
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
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
