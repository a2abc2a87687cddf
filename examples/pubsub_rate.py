"""PUB→SUB message rate over tcp on one machine, for measuring the probe's overhead.

    python pubsub_rate.py [--messages N] [--size BYTES]

Prints one line: `rate MESSAGES_PER_SECOND`. The subscriber (this process) binds and starts the
publisher as a second process of the same script (`--publish ENDPOINT`), so the two sides never
share an interpreter lock. The publisher sends warm-up messages until the subscriber, having
received one (the subscription is in place), writes `go` to its stdin; then it sends N messages,
and the subscriber times their receipt from that `go`.
"""

import argparse
import select
import subprocess
import sys
import time

import zmq

WARM_UP = b"w"


def publish(endpoint, messages, size):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.connect(endpoint)
    while not select.select([sys.stdin], [], [], 0.01)[0]:
        pub.send(WARM_UP)
    sys.stdin.readline()
    payload = b"x" * size
    for _ in range(messages):
        pub.send(payload)
    # Every message is queued; linger until the subscriber has them all.
    pub.close()
    ctx.term()


def subscribe(messages, size):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.subscribe(b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.bind("tcp://127.0.0.1:*")
    endpoint = sub.getsockopt_string(zmq.LAST_ENDPOINT)
    publisher = subprocess.Popen(
        [sys.executable, __file__, "--publish", endpoint,
         "--messages", str(messages), "--size", str(size)],
        stdin=subprocess.PIPE,
        # Inherit every descriptor: under termwatch's probe, the publisher reports too.
        close_fds=False,
    )
    sub.recv()
    start = time.perf_counter()
    publisher.stdin.write(b"go\n")
    publisher.stdin.flush()
    received = 0
    while received < messages:
        if sub.recv() != WARM_UP:
            received += 1
    elapsed = time.perf_counter() - start
    print(f"rate {messages / elapsed:.0f}", flush=True)
    publisher.stdin.close()
    sub.close()
    ctx.term()
    sys.exit(publisher.wait())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--publish", metavar="ENDPOINT")
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.messages, args.size)
    else:
        subscribe(args.messages, args.size)


if __name__ == "__main__":
    main()
