"""A publisher whose subscriber died: the PUB connects to a subscriber process, which is
killed; the PUB goes on publishing (its connecting side keeps the pipe and the subscription, so
messages queue for a peer that will not come back), then closes and terms.

    python linger_publisher.py infinite|zero [--connect ENDPOINT] [--messages N]

Expected verdicts (stop = wait):
  infinite  hang at term: the PUB was closed with linger -1 (the default) and has queued
            messages; term waits for their delivery forever.
  zero      clean: linger 0 drops them at close.

Without --connect it starts its own subscriber (this file, run as `subscriber`, in a child
process that binds tcp://127.0.0.1:* and prints its endpoint) and kills it (SIGKILL) once it
has received a message. With --connect ENDPOINT it publishes to that subscriber instead, and
whoever drives it kills the subscriber once the program prints `received`; the program then
waits until the connection has dropped (1 s) before publishing on. Prints `ready ENDPOINT`,
`received`, `subscriber gone`, `terminating` and, if term returns, `terminated`.
"""

import argparse
import select
import subprocess
import sys
import time

import zmq


def say(line):
    print(line, flush=True)


def subscriber():
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.subscribe(b"")
    sub.bind("tcp://127.0.0.1:*")
    print(sub.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    while True:
        sub.recv()
        print("got", flush=True)


def main():
    if sys.argv[1:2] == ["subscriber"]:
        return subscriber()
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["infinite", "zero"])
    parser.add_argument("--connect", help="subscriber endpoint (default: start one)")
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()

    child = None
    endpoint = args.connect
    if endpoint is None:
        child = subprocess.Popen(
            [sys.executable, __file__, "subscriber"], stdout=subprocess.PIPE, text=True
        )
        endpoint = child.stdout.readline().strip()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(endpoint)
    say(f"ready {endpoint}")
    # Publish until the subscriber has one message (its subscription has arrived).
    while True:
        pub.send(b"tick")
        if child is None:
            time.sleep(0.5)
            break
        readable, _, _ = select.select([child.stdout], [], [], 0.05)
        if readable and child.stdout.readline().strip() == "got":
            break
    say("received")
    if child is not None:
        child.kill()
        child.wait()
    time.sleep(1 if child is None else 0.2)
    say("subscriber gone")
    for _ in range(args.messages):
        pub.send(b"queued for nobody")
    pub.close(linger=-1 if args.mode == "infinite" else 0)
    say("terminating")
    ctx.term()
    say("terminated")


if __name__ == "__main__":
    sys.exit(main())
