"""Term at interpreter exit: the application registers Context.term with atexit, so the
context is termed after main() returns, while a socket is still referenced.

    python exit_term.py bug|fix

Expected verdicts (stop = wait):
  bug  hang at exit: the SUB socket is kept in a module global, which the interpreter clears
       only after the atexit handlers have run; the handler's term (zmq_ctx_term) waits for
       that socket forever and the process never exits.
  fix  clean: main() uses its sockets in `with` blocks, which close them before it returns;
       the handler's term finds none open.

pyzmq's own finalizer does not hang this way (pyzmq 27): a Context is not collected while
one of its sockets lives (the socket refers to it), and at interpreter exit its __del__ skips
term (pyzmq notes the exit with an atexit hook of its own). The hang needs a term the
application asked for, as here.

Prints `ready ENDPOINT` once the SUB is connected to the PUB, then `exiting` as main() returns.
"""

import argparse
import atexit
import sys

import zmq

ctx = zmq.Context()
# Terms the context at interpreter exit, before module globals are cleared.
atexit.register(ctx.term)

# A socket kept for the life of the module: what makes `bug` hang.
SUBSCRIBER = None


def say(line):
    print(line, flush=True)


def main():
    global SUBSCRIBER
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bug", "fix"])
    args = parser.parse_args()

    if args.mode == "bug":
        publisher = ctx.socket(zmq.PUB)
        publisher.bind("tcp://127.0.0.1:*")
        endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
        SUBSCRIBER = ctx.socket(zmq.SUB)
        SUBSCRIBER.subscribe(b"")
        SUBSCRIBER.connect(endpoint)
        say(f"ready {endpoint}")
        publisher.close(linger=0)
    else:
        with ctx.socket(zmq.PUB) as publisher, ctx.socket(zmq.SUB) as subscriber:
            publisher.bind("tcp://127.0.0.1:*")
            endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
            subscriber.subscribe(b"")
            subscriber.connect(endpoint)
            say(f"ready {endpoint}")
    say("exiting")


if __name__ == "__main__":
    sys.exit(main())
