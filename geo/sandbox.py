"""Reading an untrusted file in a child process with a time and a memory limit.

A pathological upload (a table that explodes in memory, a parser stuck on a malformed file)
must fail alone, with a report, and never take the service down. :func:`isolated` runs a
function in a forked child process: it inherits the loaded modules and boundaries, so it
starts in milliseconds, and gets an address-space limit (``RLIMIT_AS``) of its inherited
size plus a budget. Progress and the result come back through a pipe; the parent kills the
child at the deadline. The child dies with its parent (``PR_SET_PDEATHSIG``) and leaves
through ``os._exit``, so it never closes the parent's database connections it inherited.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from geo.errors import AlpClustersError, IngestError, TooLargeError

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[float], None]
PR_SET_PDEATHSIG = 1
KILL_WAIT_S = 5.0


def isolated(
    fn: Callable[..., T],
    *args: Any,
    name: str,
    timeout_s: float,
    memory_bytes: int,
    progress: Progress | None = None,
) -> T:
    """``fn(*args, progress=...)`` in a child process; its result or its error.

    Raises
    ------
    TooLargeError
        The child ran out of its memory budget, or past ``timeout_s`` seconds.
    IngestError
        The child died or failed with an unexpected error (logged with its trace): the file
        could not be read.
    AlpClustersError
        Whatever ``fn`` raised on purpose, as it raised it.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(send, os.getpid(), memory_bytes, fn, args), daemon=True
    )
    child.start()
    send.close()
    try:
        return _await(child, receive, name, timeout_s, memory_bytes, progress)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(KILL_WAIT_S)


def _await(
    child: Any,
    receive: Connection,
    name: str,
    timeout_s: float,
    memory_bytes: int,
    progress: Progress | None,
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = f"reading the file took longer than {timeout_s:g} s, the most allowed"
            raise TooLargeError(name, [_problem(name, "parse-timeout", reason)])
        if not receive.poll(min(left, 1.0)):
            continue
        try:
            kind, payload = receive.recv()
        except EOFError:  # the child died without a word (killed, or crashed in C)
            child.join(KILL_WAIT_S)
            log.error("the reader of %s died with exit code %s", name, child.exitcode)
            reason = f"the file could not be read: its reader died (exit code {child.exitcode})"
            raise IngestError(name, [_problem(name, "unreadable-file", reason)]) from None
        if kind == "progress" and progress is not None:
            progress(payload)
        elif kind == "ok":
            return payload
        elif kind == "error":
            raise payload
        elif kind == "memory":
            reason = (
                f"reading the file needed more than {memory_bytes / 2**20:,.0f} MiB of memory, "
                "the most allowed"
            )
            raise TooLargeError(name, [_problem(name, "parse-memory", reason)])
        elif kind == "crash":
            log.error("the reader of %s failed:\n%s", name, payload)
            reason = "the file could not be read (the reader failed; see the service log)"
            raise IngestError(name, [_problem(name, "unreadable-file", reason)])


def _child(
    send: Connection, parent: int, memory_bytes: int, fn: Callable[..., Any], args: Any
) -> None:
    try:
        _die_with(parent)
        _limit_memory(memory_bytes)
        result = fn(*args, progress=lambda percent: send.send(("progress", percent)))
        send.send(("ok", result))
    except MemoryError:
        _say(send, ("memory", None))
    except AlpClustersError as exc:
        _say(send, ("error", exc))
    except BaseException:
        _say(send, ("crash", traceback.format_exc()))
    finally:
        os._exit(0)  # no atexit, no finalisers: the parent's connections stay untouched


def _say(send: Connection, message: tuple[str, Any]) -> None:
    try:
        send.send(message)
    except MemoryError:  # the answer itself is too large for the budget
        send.send(("memory", None))


def _die_with(parent: int) -> None:
    """SIGKILL this process when the parent dies (Linux); exit if it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's kill at the deadline remains
        pass
    if os.getppid() != parent:
        os._exit(1)


def _limit_memory(budget: int) -> None:
    """Address space: what the child inherited plus ``budget`` bytes."""
    inherited = _address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = inherited + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or limit < soft:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space() -> int:
    """This process's virtual memory size in bytes (``VmSize``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _problem(name: str, rule: str, reason: str) -> dict[str, Any]:
    return {"file": name, "row": None, "column": None, "value": None} | {
        "rule": rule,
        "reason": reason,
    }
