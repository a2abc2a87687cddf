"""A library component on a shadow context: the application hands its libzmq context to a
component, which wraps it in a Context object of its own (`zmq.Context.shadow`), as a library
that takes a context address does. The application then shuts down with Context.destroy().

    python shadow_context.py bug|fix

Expected verdicts (stop = wait):
  bug  hang at destroy: Context.destroy() sets linger and closes only the sockets its own
       Context object made (it tracks them in a WeakSet); the component's SUB socket was made
       through the shadow Context, so destroy leaves it open and its term (zmq_ctx_term) waits
       for it forever. A shadow never terms the context, so nothing else closes it either.
  fix  clean: the component closes its socket first, then destroy closes the application's own
       socket and terms.

Prints `ready ENDPOINT` once the component's socket is connected to the application's PUB,
then `destroying` and, if destroy returns, `destroyed`.
"""

import argparse
import sys

import zmq


def say(line):
    print(line, flush=True)


class Component:
    """A library component that takes the application's libzmq context by its address."""

    def __init__(self, address, endpoint):
        # A second Context object over the same libzmq context: its sockets are tracked by the
        # shadow, not by the application's Context object.
        self.ctx = zmq.Context.shadow(address)
        self.socket = self.ctx.socket(zmq.SUB)
        self.socket.subscribe(b"")
        self.socket.connect(endpoint)

    def close(self):
        self.socket.close(linger=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bug", "fix"])
    args = parser.parse_args()

    ctx = zmq.Context()
    publisher = ctx.socket(zmq.PUB)
    publisher.bind("tcp://127.0.0.1:*")
    endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
    component = Component(ctx.underlying, endpoint)
    say(f"ready {endpoint}")

    if args.mode == "fix":
        component.close()
    say("destroying")
    # Closes `publisher` (tracked by ctx) with linger 0, then terms the libzmq context.
    ctx.destroy(linger=0)
    say("destroyed")


if __name__ == "__main__":
    sys.exit(main())
