"""PUB→SUB message rate over tcp on one machine, for measuring the probe's overhead.

    python pubsub_rate.py [--messages N] [--size BYTES]

Prints one line: `rate MESSAGES_PER_SECOND`. The publisher runs in a thread and sends N
messages (after a warm-up that waits for the subscription); the subscriber in the main thread
times their receipt.
"""

import argparse
import threading
import time

import zmq


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.subscribe(b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.bind("tcp://127.0.0.1:*")
    endpoint = sub.getsockopt_string(zmq.LAST_ENDPOINT)
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.connect(endpoint)
    # Warm-up: until one message arrives, the subscription is not in place.
    while True:
        pub.send(b"w")
        if sub.poll(10):
            sub.recv()
            break
    while sub.poll(50):
        sub.recv()
    payload = b"x" * args.size

    def publish():
        for _ in range(args.messages):
            pub.send(payload)

    thread = threading.Thread(target=publish)
    start = time.perf_counter()
    thread.start()
    for _ in range(args.messages):
        sub.recv()
    elapsed = time.perf_counter() - start
    thread.join()
    print(f"rate {args.messages / elapsed:.0f}", flush=True)
    pub.close(linger=0)
    sub.close()
    ctx.term()


if __name__ == "__main__":
    main()
