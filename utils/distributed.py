"""Start real worker processes that talk over ``torch.distributed`` (gloo, on this machine's CPU).

``launch(worker, world_size, *args, **kwargs)`` starts ``world_size`` processes, joins them into one process
group and runs ``worker(rank, world_size, *args, **kwargs)`` in each; it returns every rank's return value,
in rank order. Worker functions must be importable (defined in a module, not in a notebook cell),
because each process is a fresh Python interpreter ("spawn") that imports them by name.
Return values travel back through a queue, so keep them picklable and small (NumPy arrays, numbers).
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from datetime import timedelta
from typing import Any, Callable


def free_port() -> int:
    """A TCP port nobody listens on now, for the process group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _entry(worker: Callable, rank: int, world_size: int, port: int, queue, args: tuple, kwargs: dict) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
        try:
            queue.put((rank, worker(rank, world_size, *args, **kwargs), None))
        finally:
            dist.destroy_process_group()
    except Exception:
        queue.put((rank, None, traceback.format_exc()))


def launch(worker: Callable, world_size: int, *args, timeout: float = 120.0, **kwargs) -> list[Any]:
    """Run ``worker(rank, world_size, *args, **kwargs)`` in ``world_size`` processes joined by gloo; their results by rank."""
    import multiprocessing

    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if getattr(worker, "__module__", "__main__") == "__main__" or "<locals>" in getattr(worker, "__qualname__", ""):
        raise ValueError(f"{getattr(worker, '__name__', worker)!r} must be defined at the top level of an importable "
                         f"module (a spawned process imports it by name); move it from the notebook into a .py file")
    import queue as queues
    import time

    context = multiprocessing.get_context("spawn")
    results_queue, port = context.Queue(), free_port()
    processes = [context.Process(target=_entry, args=(worker, rank, world_size, port, results_queue, args, kwargs), daemon=True)
                 for rank in range(world_size)]
    # start them side by side: each start writes the arguments into a pipe that its child reads only after
    # importing torch, so starting them one after another would wait for each child's imports in turn
    starters = [threading.Thread(target=process.start) for process in processes]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join()
    results: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < world_size:
            rank, value, error = results_queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if error:
                raise RuntimeError(f"worker rank {rank} failed:\n{error}")
            results[rank] = value
    except queues.Empty:
        missing = sorted(set(range(world_size)) - set(results))
        raise RuntimeError(f"ranks {missing} returned nothing within {timeout} s (exit codes "
                           f"{[p.exitcode for p in processes]})") from None
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
    return [results[rank] for rank in range(world_size)]
