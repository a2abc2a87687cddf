"""A blocking receiver: a thread blocked in recv() gets ETERM when the main thread terms the
context, and either closes its socket or keeps it.

    python blocking_receiver.py keeps|closes [--connect ENDPOINT] [--messages N]

Expected verdicts (stop = wait):
  keeps    hang at term: the receiver leaves its loop on ETERM without closing the socket
           (which stays referenced, so the garbage collector does not close it either), and
           Context.term() waits for it forever.
  closes   clean: the receiver closes its socket on ETERM and term returns.

Without --connect it publishes to itself (a PUB bound to tcp://127.0.0.1:*, closed with linger
0 before term). Prints `ready ENDPOINT`, `received N`, `terminating`, `eterm` (from the
receiver) and, if term returns, `terminated`.
"""

import argparse
import sys
import threading

import zmq

# Sockets kept past their thread: what makes `keeps` hang.
KEPT = []


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["keeps", "closes"])
    parser.add_argument("--connect", help="publisher endpoint (default: publish to itself)")
    parser.add_argument("--messages", type=int, default=3)
    args = parser.parse_args()

    ctx = zmq.Context()
    publisher = None
    endpoint = args.connect
    if endpoint is None:
        publisher = ctx.socket(zmq.PUB)
        publisher.bind("tcp://127.0.0.1:*")
        endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
    received = threading.Event()

    def receive():
        sub = ctx.socket(zmq.SUB)
        sub.subscribe(b"")
        sub.connect(endpoint)
        KEPT.append(sub)
        count = 0
        while True:
            try:
                sub.recv()
            except zmq.ContextTerminated:
                say("eterm")
                if args.mode == "closes":
                    sub.close()
                return
            count += 1
            if count == args.messages:
                received.set()

    thread = threading.Thread(target=receive, name="receiver")
    thread.start()
    say(f"ready {endpoint}")
    while not received.is_set():
        if publisher is not None:
            publisher.send(b"tick")
        received.wait(0.05)
    say(f"received {args.messages}")
    if publisher is not None:
        publisher.close(linger=0)
    say("terminating")
    ctx.term()
    say("terminated")
    thread.join()


if __name__ == "__main__":
    sys.exit(main())
