"""Two components on the global context (`zmq.Context.instance()`): a publisher and a
listener, each taking the shared instance as pyzmq's documentation suggests.

    python shared_instance.py bug|fix

Expected verdicts (stop = wait):
  bug  hang at the publisher's close: the publisher terms the global instance on its own
       shutdown, as if it owned it, while the listener still holds an open SUB socket in that
       context; term (zmq_ctx_term) waits for it forever.
  fix  clean: components close only their own sockets; the application, which owns the shared
       context, terms it after every component has closed.

Prints `ready ENDPOINT` once the listener is connected to the publisher, then `closing` and,
if shutdown returns, `closed`.
"""

import argparse
import sys

import zmq


def say(line):
    print(line, flush=True)


class Publisher:
    def __init__(self):
        self.ctx = zmq.Context.instance()
        self.socket = self.ctx.socket(zmq.PUB)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self, term):
        self.socket.close(linger=0)
        if term:
            # The mistake: the instance is shared, not this component's to term.
            self.ctx.term()


class Listener:
    def __init__(self, endpoint):
        self.ctx = zmq.Context.instance()
        self.socket = self.ctx.socket(zmq.SUB)
        self.socket.subscribe(b"")
        self.socket.connect(endpoint)

    def close(self):
        self.socket.close(linger=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bug", "fix"])
    args = parser.parse_args()

    publisher = Publisher()
    listener = Listener(publisher.endpoint)
    say(f"ready {publisher.endpoint}")

    say("closing")
    if args.mode == "bug":
        publisher.close(term=True)
        listener.close()
    else:
        publisher.close(term=False)
        listener.close()
        zmq.Context.instance().term()
    say("closed")


if __name__ == "__main__":
    sys.exit(main())
