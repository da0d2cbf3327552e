"""A real Radicale CalDAV server in a child process, on a free port, with htpasswd users."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from carcloud.runtime.launcher import free_port


@dataclass
class Radicale:
    """A running Radicale: its URL, its users, and helpers to change calendars on it."""

    folder: Path
    users: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        users = self.folder / "users"
        users.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        config = self.folder / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
            f"[storage]\nfilesystem_folder = {self.folder / 'collections'}\n"
            "[rights]\ntype = owner_only\n"
            "[logging]\nlevel = warning\n"
        )
        with (self.folder / "radicale.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"radicale exited: {(self.folder / 'radicale.log').read_text()}"
                )
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("radicale did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, self.users[user]), timeout=10)

    def make_calendar(self, user: str, name: str) -> str:
        """A new calendar collection; its URL."""
        body = (
            '<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" '
            'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
            f"<d:displayname>{name}</d:displayname></d:prop></d:set></c:mkcalendar>"
        )
        with self.client(user) as client:
            answer = client.request("MKCALENDAR", f"/{user}/{name}/", content=body)
        assert answer.status_code == 201, answer.text
        return f"{self.url}/{user}/{name}/"

    def put(self, user: str, calendar: str, name: str, ics: str) -> None:
        """Create or replace one calendar object."""
        with self.client(user) as client:
            answer = client.put(
                f"/{user}/{calendar}/{name}.ics",
                content=ics.replace("\n", "\r\n"),
                headers={"Content-Type": "text/calendar"},
            )
        assert answer.status_code in (201, 204), answer.text

    def delete(self, user: str, path: str) -> None:
        with self.client(user) as client:
            assert client.delete(f"/{user}/{path}").status_code in (200, 204)
