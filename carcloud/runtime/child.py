"""A server carcloud runs as its own child process (nats-server, Janus).

Started in a session of its own (Ctrl-C reaches carcloud, which stops its children
last), told by the kernel to stop when carcloud dies, its output in a log file;
ready once it accepts connections; stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from carcloud.errors import MessagingError

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv: Sequence[str], log_file: Path, **options: object) -> subprocess.Popen[bytes]:
    """Start `argv` with its output appended to `log_file`."""
    log_handle = log_file.open("ab")
    try:
        return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
            list(argv),
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            start_new_session=True,
            **options,
        )
    finally:
        log_handle.close()


async def accepts(host: str, port: int) -> bool:
    """Whether something listens on host:port."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_ready(
    process: subprocess.Popen[bytes],
    name: str,
    log_file: Path,
    ready: Callable[[], Awaitable[bool]],
    startup_s: float,
) -> bool:
    """Poll `ready` until it is true (True) or `startup_s` has passed (False).

    A child that exits meanwhile raises MessagingError with its log's last lines.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_s
    while loop.time() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace").splitlines()[-5:]  # noqa: ASYNC240 - once, after it died
            raise MessagingError(
                f"{name} exited with code {process.returncode}: " + " | ".join(tail)
            )
        if await ready():
            return True
        await asyncio.sleep(0.05)
    return False


async def stop(process: subprocess.Popen[bytes] | None, name: str, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; nothing if it is not running."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)
    log.info("%s stopped", name)
