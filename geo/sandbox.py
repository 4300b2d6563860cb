"""Reading an untrusted file in a child process with a time and a memory limit.

A pathological upload (a table that explodes in memory, a parser stuck on a malformed file)
must fail alone, with a report, and never take the service down. :func:`isolated` runs a
function in a forked child process: it inherits the loaded modules and boundaries, so it
starts in milliseconds. Its memory budget counts the memory the child itself writes: a
watchdog thread reads the child's private pages (``Private_Clean + Private_Dirty`` of
``/proc/self/smaps_rollup``: after the fork every page is shared with the parent, and a page
becomes private when the child writes it, freed heap memory of the parent included) and
stops the child past the budget; an address-space limit (``RLIMIT_AS``: the inherited size
plus the budget) stops any single allocation beyond it at once. Progress and the result
come back through a pipe; the parent kills the child at the deadline. The child dies with
its parent (``PR_SET_PDEATHSIG``) and leaves through ``os._exit``, so it never closes the
parent's database connections it inherited.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import threading
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
WATCH_EVERY_S = 0.05  # how often the child's private memory is read


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
    say = _Say(send)
    try:
        _die_with(parent)
        _limit_memory(memory_bytes)
        _watch(say, memory_bytes)
        result = fn(*args, progress=lambda percent: say(("progress", percent)))
        say(("ok", result))
    except MemoryError:
        say(("memory", None))
    except AlpClustersError as exc:
        say(("error", exc))
    except BaseException:
        say(("crash", traceback.format_exc()))
    finally:
        os._exit(0)  # no atexit, no finalisers: the parent's connections stay untouched


class _Say:
    """Messages to the parent, one at a time (the watchdog thread may speak too)."""

    def __init__(self, send: Connection) -> None:
        self.send, self.lock = send, threading.Lock()

    def __call__(self, message: tuple[str, Any]) -> None:
        with self.lock:
            try:
                self.send.send(message)
            except MemoryError:  # the answer itself is too large for the budget
                self.send.send(("memory", None))


def _watch(say: _Say, budget: int) -> None:
    """A daemon thread stopping this process once its private memory passes ``budget``."""
    start = _private_bytes()
    if start is None:  # no smaps_rollup (not Linux >= 4.14): RLIMIT_AS alone
        return

    def watch() -> None:
        while True:
            time.sleep(WATCH_EVERY_S)
            used = (_private_bytes() or 0) - start
            if used > budget:
                with say.lock:  # nobody else may write to the pipe any more
                    say.send.send(("memory", None))
                    os._exit(0)

    threading.Thread(target=watch, name="memory-watch", daemon=True).start()


def _private_bytes() -> int | None:
    """Memory this process alone holds: its private clean and dirty pages, in bytes."""
    try:
        with open("/proc/self/smaps_rollup") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith("Private_"))
    except OSError:
        return None
    return sum(int(v.split()[0]) for v in fields.values()) * 1024


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
