"""The embedded llama-server, in a child process of its own.

Run as ``python -m triage.summarize.server_main MODEL PORT SLOTS CTX_PER_SLOT THREADS``. It prints
the address it listens on as one line on stdout, then serves until its stdin closes (the parent
ended, even by SIGKILL) or it gets SIGTERM. A child of its own keeps llama.cpp's logging and
memory out of the job and lets the job stop it for certain.
"""

from __future__ import annotations

import signal
import sys
import threading


def main(argv: list[str]) -> int:
    model, port, slots, ctx_per_slot, threads = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.port = port
    params.n_parallel = slots
    params.n_ctx = ctx_per_slot * slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.endpoint_metrics = True
    params.endpoint_props = True
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent is gone
        done.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    done.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
