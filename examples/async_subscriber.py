"""The asynchronous subscriber: a zmq.asyncio SUB socket served by an asyncio loop on a
background thread, and three ways to shut it down.

    python async_subscriber.py bug|half-fix|fix [--connect ENDPOINT] [--messages N]

Expected verdicts (stop = wait: the program shuts down by itself after N messages):
  bug       hang at term: the loop is stopped, nothing closes its SUB socket, and the main
            thread's Context.term() (zmq_ctx_destroy) waits for it forever.
  half-fix  hang at term: cancelling the loop's tasks and stopping the loop still does not
            close the socket.
  fix       clean: the socket is closed on the loop's own thread, then the loop stops, then
            the main thread terms.

Without --connect it publishes to itself (a PUB bound to tcp://127.0.0.1:*, closed with linger
0 before term, so only the subscriber can hold term up). With --connect ENDPOINT it subscribes
to that publisher instead. Prints `ready ENDPOINT` once subscribed, `received N` when done,
then `terminating` and, if term returns, `terminated`.
"""

import argparse
import asyncio
import sys
import threading
import time

import zmq
import zmq.asyncio


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bug", "half-fix", "fix"])
    parser.add_argument("--connect", help="publisher endpoint (default: publish to itself)")
    parser.add_argument("--messages", type=int, default=3)
    args = parser.parse_args()

    ctx = zmq.asyncio.Context()
    publisher = None
    endpoint = args.connect
    if endpoint is None:
        publisher = zmq.Context.shadow(ctx.underlying).socket(zmq.PUB)
        publisher.bind("tcp://127.0.0.1:*")
        endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    received = threading.Event()
    state = {}

    async def subscribe():
        sub = ctx.socket(zmq.SUB)
        sub.subscribe(b"")
        sub.connect(endpoint)
        state["socket"] = sub

        async def receive():
            count = 0
            while True:
                await sub.recv()
                count += 1
                if count == args.messages:
                    received.set()

        state["task"] = asyncio.ensure_future(receive())

    asyncio.run_coroutine_threadsafe(subscribe(), loop).result()
    say(f"ready {endpoint}")
    while not received.is_set():
        if publisher is not None:
            publisher.send(b"tick")
        received.wait(0.05)
    say(f"received {args.messages}")
    if publisher is not None:
        publisher.close(linger=0)

    if args.mode == "half-fix":

        async def cancel_all():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result()
    elif args.mode == "fix":

        async def close_socket():
            state["task"].cancel()
            state["socket"].close(linger=0)

        asyncio.run_coroutine_threadsafe(close_socket(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    say("terminating")
    ctx.term()
    say("terminated")


if __name__ == "__main__":
    sys.exit(main())
