#!/usr/bin/env python3
"""A pub/sub bus proxy in pyzmq: an XSUB bound on FRONTEND (publishers connect there), an XPUB
bound on BACKEND (subscribers connect there), forwarded by ``ThreadDevice(QUEUE, XSUB, XPUB)``.

Usage: pyzmq_bus_proxy.py FRONTEND BACKEND

It stops on SIGINT or SIGTERM: terminating the context makes the device's proxy return, the device
closes both sockets, then the context term completes and the program exits 0. Sockets get the
settings ``termwatch bench`` gives its own engines (HWM 1000 both ways, ZMQ_XPUB_NODROP on the
XPUB), so measuring it against them compares forwarding, not queue sizes:

    termwatch bench --transport tcp,ipc --engine zmq_proxy,pyzmq \
        --proxy pyzmq='target/venv/bin/python examples/pyzmq_bus_proxy.py {frontend} {backend}'
"""

import signal
import sys

import zmq
from zmq.devices import ThreadDevice

HWM = 1000


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    frontend, backend = sys.argv[1], sys.argv[2]
    # Blocked before the device's thread exists, so only sigwait below receives them.
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)

    device = ThreadDevice(zmq.QUEUE, zmq.XSUB, zmq.XPUB)
    for option in (zmq.SNDHWM, zmq.RCVHWM):
        device.setsockopt_in(option, HWM)
        device.setsockopt_out(option, HWM)
    device.setsockopt_out(zmq.XPUB_NODROP, 1)
    device.bind_in(frontend)
    device.bind_out(backend)
    device.start()
    print(f"pyzmq proxy: forwarding {frontend} -> {backend}", flush=True)

    signal.sigwait(stop)
    # The device's proxy gets ETERM, closes its sockets, and then term returns.
    zmq.Context.instance().term()
    device.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
