"""CPU threads of a training process (``--num_threads``).

``accelerate launch`` always exports ``OMP_NUM_THREADS`` to the script: the value of ``--num_cpu_threads_per_process``
when given, else the launcher's own ``OMP_NUM_THREADS`` when set, else **1** (it computes cores / processes only with
``--cpu``/``use_cpu`` and ``OMP_NUM_THREADS`` unset; ``accelerate/commands/launch.py``). It exports no marker saying
which case applied, so on CPU a launched script reads its launcher's command line and environment (``/proc``, Linux):
when neither ``--num_cpu_threads_per_process`` nor ``OMP_NUM_THREADS`` was given there, the 1 is accelerate's default,
and the script uses the machine instead: ``torch.set_num_threads(cores // local processes)``. ``--num_threads N``
always wins; a user's ``OMP_NUM_THREADS`` (outside accelerate, or given to the launcher) is kept.
"""

from __future__ import annotations

import os

import torch


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def accelerate_launcher_choice(max_depth: int = 6) -> bool | None:
    """Whether an ``accelerate launch`` ancestor of this process was given a thread count (``True``/``False``), or
    None when no such launcher is found (not launched by accelerate, or no ``/proc``)."""
    pid = os.getppid()
    for _ in range(max_depth):
        if pid is None or pid <= 1:
            return None
        cmdline = (_read(f"/proc/{pid}/cmdline") or b"").split(b"\0")
        words = [w.decode(errors="replace") for w in cmdline if w]
        is_accelerate = any(os.path.basename(w) == "accelerate" or w.startswith("accelerate.commands") for w in words)
        if is_accelerate and any(w == "launch" or w.endswith("accelerate.commands.launch") for w in words):
            given = any(w.startswith("--num_cpu_threads_per_process") for w in words)
            environ = _read(f"/proc/{pid}/environ") or b""
            return given or any(item.startswith(b"OMP_NUM_THREADS=") for item in environ.split(b"\0"))
        pid = _parent(pid)
    return None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_process_count(accelerator=None) -> int:
    for name in ("LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if os.environ.get(name, "").isdigit():
            return max(1, int(os.environ[name]))
    return max(1, accelerator.num_processes if accelerator is not None else 1)


def configure_cpu_threads(accelerator, num_threads: int | None = None, log=print) -> int | None:
    """On CPU, set torch's thread count: ``num_threads`` when given; the user's ``OMP_NUM_THREADS`` when they chose
    it; otherwise cores // local processes (also replacing accelerate's default of 1). Returns the count set, or None
    on an accelerator (nothing changed)."""
    if accelerator.device.type != "cpu":
        return None
    if num_threads is not None:
        threads, why = num_threads, "--num_threads"
    else:
        omp = os.environ.get("OMP_NUM_THREADS")
        launcher = accelerate_launcher_choice() if omp is not None else None
        if omp is not None and launcher is not False:
            return torch.get_num_threads()  # the user's choice (OMP_NUM_THREADS or --num_cpu_threads_per_process)
        local = local_process_count(accelerator)
        threads = max(1, available_cores() // local)
        why = f"{available_cores()} cores / {local} local process(es)"
    torch.set_num_threads(threads)
    log(f"CPU threads per process: {threads} ({why})")
    return threads


def add_num_threads_argument(group) -> None:
    group.add_argument(
        "--num_threads",
        type=int,
        default=None,
        help="CPU threads per process (on CPU; default: cores / local processes, unless OMP_NUM_THREADS or accelerate's "
        "--num_cpu_threads_per_process was given)",
    )


__all__ = ["accelerate_launcher_choice", "add_num_threads_argument", "available_cores", "configure_cpu_threads",
           "local_process_count"]
