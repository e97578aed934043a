"""A multi-node step in plain Python: the replicas of a gang find each other and all-reduce a value.

allot starts one copy of this program per replica, each on its own node, with torchrun's variables:
WORLD_SIZE (= NNODES) replicas, this one's RANK (= NODE_RANK), and MASTER_ADDR:MASTER_PORT, where
replica 0 listens. Each epoch every replica sends its value to replica 0, which sums them and sends
the sum back; replica 0 then saves the epoch in $ALLOT_CHECKPOINT_DIR (which allot keeps in its
store), so that a gang stopped part way (preempted, or a node lost) starts again from there. Every
replica reads that checkpoint at start: allot gives all of them replica 0's. Each writes its rank,
the sum and its GPUs to $ALLOT_OUTPUT.

With PyTorch the same rendezvous is `torch.distributed.init_process_group("gloo")` (or "nccl"),
which reads the very same variables; this one needs only the standard library.
"""
import argparse
import json
import os
import socket
import sys
import time


def env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"{name} is not set: run this as a step with replicas (allot submit --replicas 2 ...)")
    return int(value)


def send(sock: socket.socket, message: dict) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def receive(stream) -> dict:
    line = stream.readline()
    if not line:
        raise ConnectionError("the other replica closed the connection")
    return json.loads(line)


def connect(addr: str, port: int, deadline: float) -> socket.socket:
    """Replica 0 may start a little later than the others: try until the deadline."""
    while True:
        try:
            return socket.create_connection((addr, port), timeout=5)
        except OSError as err:
            if time.time() > deadline:
                sys.exit(f"could not reach replica 0 at {addr}:{port}: {err}")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--epoch-seconds", type=float, default=0.0)
    parser.add_argument("--value", type=float, default=None, help="this replica's value (default: rank + 1)")
    parser.add_argument("--fail-rank", type=int, default=None, help="this rank exits with --fail-code after one epoch")
    parser.add_argument("--fail-code", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the other replicas")
    args = parser.parse_args()

    world, rank = env_int("WORLD_SIZE"), env_int("RANK")
    addr, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), env_int("MASTER_PORT")
    value = args.value if args.value is not None else float(rank + 1)
    ckpt_dir = os.environ.get("ALLOT_CHECKPOINT_DIR", ".")
    ckpt = os.path.join(ckpt_dir, "allreduce.json")
    start, total = 0, 0.0
    if os.path.exists(ckpt):
        with open(ckpt) as f:
            state = json.load(f)
        start, total = int(state["epoch"]), float(state["sum"])
        print(f"rank {rank}: resuming from checkpoint at epoch {start}", flush=True)
    deadline = time.time() + args.timeout
    print(f"rank {rank} of {world}: rendezvous at {addr}:{port}", flush=True)

    peers = []
    if rank == 0:
        server = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("", port))
        server.listen(world)
        server.settimeout(max(1.0, deadline - time.time()))
        for _ in range(world - 1):
            conn, _ = server.accept()
            conn.settimeout(args.timeout)
            stream = conn.makefile("r")
            hello = receive(stream)
            if hello["start"] != start:
                sys.exit(f"replica {hello['rank']} starts at epoch {hello['start']}, replica 0 at {start}")
            peers.append((conn, stream))
        server.close()
    else:
        sock = connect(addr, port, deadline)
        sock.settimeout(args.timeout)
        stream = sock.makefile("r")
        send(sock, {"rank": rank, "start": start})

    for epoch in range(start, args.epochs):
        if rank == 0:
            total = value + sum(receive(s)["value"] for _, s in peers)
            for conn, _ in peers:
                send(conn, {"sum": total})
            tmp = ckpt + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"epoch": epoch + 1, "sum": total}, f)
            os.replace(tmp, ckpt)
        else:
            send(sock, {"value": value})
            total = receive(stream)["sum"]
        print(f"rank {rank} of {world}: epoch {epoch + 1}/{args.epochs}, sum {total:g}", flush=True)
        if args.fail_rank == rank:
            print(f"rank {rank}: failing on purpose with exit code {args.fail_code}", flush=True)
            sys.exit(args.fail_code)
        time.sleep(args.epoch_seconds)

    result = {
        "rank": rank,
        "worldSize": world,
        "sum": total,
        "resumedFrom": start,
        "node": os.environ.get("ALLOT_NODE_ID"),
        "gangId": os.environ.get("ALLOT_GANG_ID"),
        "cudaVisibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "localWorldSize": int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    }
    if os.environ.get("ALLOT_OUTPUT"):
        with open(os.environ["ALLOT_OUTPUT"], "w") as f:
            json.dump(result, f)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
