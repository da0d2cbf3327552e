"""Audio rooms: the largest room Janus + carcloud sustain here, CPU per participant, join time.

    python bench/calls.py [--sizes 5,10,20,30,40] [--window-s 20] [--peer-procs 4]

Starts a real `carcloud up` with its Janus child (Debian's `janus`, AudioBridge),
media on 127.0.0.2 on a veth interface of its own (as the tests do; made here as
root when missing). For each room size N, in a fresh room: N aiortc participants
(carcloud_agent.call, the car's call module), each with its own join token and a
sine tone of its own frequency, join one after another through carcloud's
signalling (`POST /rooms/{id}/join`), spread over `--peer-procs` processes. Once
everyone hears audio, a measuring window:

- packet loss per participant and direction: upstream from the RTCP receiver
  reports Janus sends about the participant's stream (packets lost / packets sent
  in the window), downstream from the packets the participant received against
  the RTP sequence numbers (lost / expected);
- CPU seconds of Janus, of carcloud (the `carcloud up` process: API, signalling,
  workers), of nats-server, and of the participants' processes, each divided by
  the window and by N;
- UDP datagrams the kernel dropped in the window because a receiver's socket buffer
  was full (the whole machine's counter): loss from a receiver that did not read in
  time, rather than from the network;
- join time: from the start of the join (offer, `POST .../join`, answer, ICE, DTLS)
  to the first frame of audio with the others' tones in it, for participants 2..N
  (the first has nobody to hear); the POST alone is given too.

The step size goes up until a participant loses 1 % or more in either direction,
a participant hears too little, or Janus, carcloud and the participants together use
every core (other work on the machine shows as its busy share and load average). All traffic
stays on this machine (127.0.0.2). The participants' processes are this
benchmark's, not carcloud's: their CPU is reported apart, and on a 2-core machine
they may be what limits the size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

MEDIA_ADDRESS = "127.0.0.2"
LINK, PEER = "ccmedia0", "ccmedia1"
RATE = 48_000
FRAME = 960  # 20 ms
HEARD_RMS = 300.0  # int16 RMS above which a frame carries a tone (silence is ~0)
TICKS = os.sysconf("SC_CLK_TCK")


# ---- the participants' processes ------------------------------------------------------


def widen_receive_buffers(call: Any, size: int) -> None:
    """Give a participant's UDP sockets `size` bytes of receive buffer (as root, past
    rmem_max): a participants' process that reads late then drops nothing of its own."""
    import socket

    for transceiver in call.peer.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        for protocol in gatherer._connection._protocols:
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, 33, size)  # SO_RCVBUFFORCE


async def peer_worker(spec: dict[str, Any]) -> None:
    """Join the given tokens one by one; answer `stats` and `stop` lines on stdin."""
    import aiortc.rtcrtpreceiver
    import numpy as np
    from aiortc import MediaStreamTrack
    from aiortc.codecs.opus import OpusEncoder
    from av import AudioFrame, Packet

    import carcloud_agent.call as callmod
    from carcloud_agent.call import PcmSink, RoomCall, join_room, use_host_addresses
    from carcloud_agent.protocol.calls import RoomJoin

    use_host_addresses([spec["address"]])
    loop = asyncio.get_running_loop()
    light = bool(spec.get("light"))
    if light:
        # These participants do not decode what they receive (their counts come from the
        # RTP sequence numbers all the same); the listeners' process decodes and checks.
        class Undecoded:
            def decode(self, encoded_frame: Any) -> list[Any]:
                return []

        setattr(aiortc.rtcrtpreceiver, "get_decoder", lambda codec: Undecoded())  # noqa: B010

    class Tone(MediaStreamTrack):
        """A tone from one precomputed second of frames (a microphone costs nothing here)."""

        kind = "audio"

        def __init__(self, hz: float, light: bool) -> None:
            super().__init__()
            t = np.arange(RATE) / RATE
            pcm = (0.3 * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)
            self.chunks = [pcm[i : i + FRAME].tobytes() for i in range(0, RATE, FRAME)]
            self.sample = 0
            self.start: float | None = None
            self.opus: list[bytes] = []
            if light:  # one second of the tone encoded once, then sent again and again
                encoder = OpusEncoder()
                while len(self.opus) < 2 * len(self.chunks):
                    payloads, _ = encoder.encode(self.frame(len(self.opus)))
                    self.opus += payloads
                self.opus = self.opus[len(self.chunks) :]

        def frame(self, index: int) -> AudioFrame:
            frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
            frame.planes[0].update(self.chunks[index % len(self.chunks)])
            frame.sample_rate = RATE
            frame.pts = index * FRAME
            frame.time_base = Fraction(1, RATE)
            return frame

        async def recv(self) -> Any:  # an AudioFrame, or a Packet already encoded
            if self.start is None:
                self.start = time.monotonic()
            due = self.start + self.sample / RATE - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            if self.opus:
                packet = Packet(self.opus[(self.sample // FRAME) % len(self.opus)])
                packet.pts = self.sample
                packet.time_base = Fraction(1, RATE)
                self.sample += FRAME
                return packet
            frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
            frame.planes[0].update(self.chunks[(self.sample // FRAME) % len(self.chunks)])
            frame.sample_rate = RATE
            frame.pts = self.sample
            frame.time_base = Fraction(1, RATE)
            self.sample += FRAME
            return frame

    class Ear(PcmSink):
        """Counts frames and when the first one with audio in it came; keeps nothing."""

        def __init__(self) -> None:
            super().__init__()
            self.first_frame: float | None = None
            self.first_heard: float | None = None
            self.heard = 0

        def write(self, frame: AudioFrame) -> None:
            now = time.monotonic()
            self.frames += 1
            if self.first_frame is None:
                self.first_frame = now
            rms = float(np.sqrt(np.mean(frame.to_ndarray().astype(np.float64) ** 2)))
            if rms > HEARD_RMS:
                self.heard += 1
                if self.first_heard is None:
                    self.first_heard = now

    post_s: list[float] = []
    real_post = callmod._post

    def timed_post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        try:
            return real_post(url, body)
        finally:
            post_s.append(time.monotonic() - start)

    callmod._post = timed_post

    calls: list[tuple[RoomCall, Ear, float]] = []
    connected_at: list[float] = []

    async def join_next() -> dict[str, Any]:
        token, hz = spec["peers"][len(calls)]
        ear = Ear()
        join = RoomJoin(spec["room"], token, spec["signalling"])
        started = time.monotonic()
        call = await join_room(join, Tone(hz, light), ear)
        await asyncio.wait_for(call.connected.wait(), 20)
        if spec["rcvbuf"]:
            widen_receive_buffers(call, spec["rcvbuf"])
        calls.append((call, ear, started))
        connected_at.append(time.monotonic())
        if light:  # the first packet of the room's mix stands for the first audio heard
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stats = (await call.peer.getStats()).values()
                if any(st.type == "inbound-rtp" and st.packetsReceived for st in stats):
                    ear.first_frame = ear.first_heard = time.monotonic()
                    break
                await asyncio.sleep(0.01)
        return {"joined": len(calls), "post_s": post_s[-1], "connect_s": connected_at[-1] - started}

    async def snapshot() -> list[dict[str, Any]]:
        rows = []
        for (call, ear, started), connected in zip(calls, connected_at, strict=True):
            report = await call.peer.getStats()
            row: dict[str, Any] = {
                "sent": 0, "up_lost": 0, "up_rr": 0, "received": 0, "down_lost": 0,
                "frames": ear.frames, "heard": ear.heard, "started": started, "light": light,
                "connected": connected,
                "first_frame_s": None if ear.first_frame is None else ear.first_frame - started,
                "first_heard_s": None if ear.first_heard is None else ear.first_heard - started,
            }  # fmt: skip
            for stat in report.values():
                if stat.type == "outbound-rtp":
                    row["sent"] += stat.packetsSent
                elif stat.type == "remote-inbound-rtp":
                    row["up_lost"] += stat.packetsLost
                    row["up_rr"] += 1
                elif stat.type == "inbound-rtp":
                    row["received"] += stat.packetsReceived
                    row["down_lost"] += stat.packetsLost
            rows.append(row)
        return rows

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "join":
            print(json.dumps(await join_next()), flush=True)
        elif line == "stats":
            print(json.dumps({"stats": await snapshot()}), flush=True)
        elif line in ("stop", ""):
            break
    for call, _ear, _started in calls:
        await call.close(leave=True)
    print(json.dumps({"stopped": True}), flush=True)


# ---- the orchestrator -----------------------------------------------------------------


def ensure_media_address() -> None:
    """127.0.0.2 on a veth of our own: Janus and aiortc offer no loopback candidates."""
    shown = subprocess.run(["ip", "-br", "addr", "show", "dev", LINK], capture_output=True,
                           text=True, check=False).stdout  # fmt: skip
    if MEDIA_ADDRESS in shown:
        return
    if os.geteuid() != 0:
        sys.exit(f"needs {MEDIA_ADDRESS} on a veth: run as root (see tests/calls/conftest.py)")
    for args in (
        ("link", "add", LINK, "type", "veth", "peer", "name", PEER),
        ("addr", "add", f"{MEDIA_ADDRESS}/32", "dev", LINK),
        ("link", "set", LINK, "up"),
        ("link", "set", PEER, "up"),
    ):
        subprocess.run(["ip", *args], capture_output=True, check=False)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped because a receiver's buffer was full (whole machine)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    head, values = [line for line in lines if line[0] == "Udp:"][:2]
    return int(values[head.index("RcvbufErrors")])


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            found += [int(c) for c in path.read_text().split()]
    return found


def process_groups(up_pid: int) -> dict[str, list[int]]:
    """carcloud's processes by what they are: janus, nats-server, carcloud (python)."""
    groups: dict[str, list[int]] = {"janus": [], "nats": [], "carcloud": [up_pid]}
    todo = children(up_pid)
    while todo:
        pid = todo.pop()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        key = "janus" if comm.startswith("janus") else "nats" if "nats" in comm else "carcloud"
        groups[key].append(pid)
        todo += children(pid)
    return groups


class Peers:
    """One participants' process."""

    def __init__(self, spec: dict[str, Any], nice: int) -> None:
        self.proc = subprocess.Popen(
            [*niced(nice), sys.executable, __file__, "--peer-worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.ready: dict[str, Any] | None = None

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"participants' process {self.proc.pid} ended")
            if line.startswith("{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_ready(self) -> None:
        while self.ready is None:
            answer = self.read()
            if answer.get("ready"):
                self.ready = answer

    def stats(self) -> list[dict[str, Any]]:
        self.send("stats")
        rows: list[dict[str, Any]] = self.read()["stats"]
        return rows

    def stop(self) -> None:
        with_timeout = time.monotonic() + 20
        try:
            self.send("stop")
            while time.monotonic() < with_timeout and not self.read().get("stopped"):
                pass
        except (RuntimeError, BrokenPipeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def niced(nice: int) -> list[str]:
    """The prefix that runs a command at this niceness (negative needs root)."""
    return ["nice", "-n", str(nice)] if nice else []


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_size(
    api: httpx.Client, url: str, groups: dict[str, list[int]], size: int, args: argparse.Namespace
) -> dict[str, Any]:
    room = api.post("/rooms", json={"name": f"Bench {size}", "brand": "bench",
                                     "max_participants": max(size, 2)}).json()  # fmt: skip
    people = [f"P{i:03d}" for i in range(size)]
    invites = api.post(f"/rooms/{room['id']}/invite", json={"people": people}).json()["invites"]
    tokens = [invite["token"] for invite in invites]
    # Participant i joins through process owner[i]; one join at a time, in order. With
    # --light, every --listen-every'th participant decodes (the listeners' process 0),
    # the others send pre-encoded Opus and decode nothing.
    if args.light:
        light = [i for i in range(size) if i % args.listen_every]
        groups_of = [[i for i in range(size) if i % args.listen_every == 0]]
        lanes = min(args.peer_procs, len(light)) or 1
        groups_of += [light[p::lanes] for p in range(lanes) if light[p::lanes]]
    else:
        lanes = min(args.peer_procs, size)
        groups_of = [list(range(p, size, lanes)) for p in range(lanes)]
    owner = {i: p for p, mine in enumerate(groups_of) for i in mine}
    specs = []
    for p, mine in enumerate(groups_of):
        specs.append({
            "address": MEDIA_ADDRESS, "room": room["id"],
            "signalling": f"{url}/api/v1/rooms/{room['id']}/join",
            "rcvbuf": args.peer_rcvbuf, "light": bool(args.light and p > 0),
            "peers": [(tokens[i], 300.0 + 23.0 * i) for i in mine],
        })  # fmt: skip
    started = time.monotonic()
    workers = [Peers(spec, args.nice) for spec in specs]
    try:
        for worker in workers:
            worker.wait_ready()
        posts: list[float] = []
        for index in range(size):
            worker = workers[owner[index]]
            worker.send("join")
            posts.append(float(worker.read()["post_s"]))
        fill_s = time.monotonic() - started
        time.sleep(args.settle_s)
        view = api.get(f"/rooms/{room['id']}").json()
        listed = sum(1 for p in view["participants"] if p["connected"])
        pids = {name: list(pids) for name, pids in groups.items()}
        pids["peers"] = [w.proc.pid for w in workers]
        before_cpu = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
        before_machine = machine_busy()
        before_drops = udp_rcvbuf_errors()
        before = [row for w in workers for row in w.stats()]
        t0 = time.monotonic()
        time.sleep(args.window_s)
        after = [row for w in workers for row in w.stats()]
        window = time.monotonic() - t0
        after_cpu = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
        after_machine = machine_busy()
        drops = udp_rcvbuf_errors() - before_drops
        load = os.getloadavg()
    finally:
        for worker in workers:
            worker.stop()
        api.delete(f"/rooms/{room['id']}")

    up_loss, down_loss, heard, no_rr = [], [], [], 0
    for a, b in zip(before, after, strict=True):
        sent = b["sent"] - a["sent"]
        if b["up_rr"] == 0:
            no_rr += 1
        up_loss.append(max(0, b["up_lost"] - a["up_lost"]) / sent if sent else 1.0)
        got = b["received"] - a["received"]
        lost = max(0, b["down_lost"] - a["down_lost"])
        down_loss.append(lost / (got + lost) if got + lost else 1.0)
        frames = b["frames"] - a["frames"]
        if not b["light"]:
            heard.append((b["heard"] - a["heard"]) / frames if frames else 0.0)
    # Join time counts for those who started joining once someone was already in the room
    # (monotonic clocks are one clock across processes); the others had nobody to hear.
    first_in = min(row["connected"] for row in after)
    timed = [row for row in after if row["started"] > first_in]
    joins = [r["first_heard_s"] for r in timed if r["first_heard_s"] is not None]
    never_heard = sum(1 for r in timed if r["first_heard_s"] is None)
    cpu = {name: (after_cpu[name] - before_cpu[name]) / window for name in after_cpu}
    busy = (after_machine[0] - before_machine[0]) / max(1, after_machine[1] - before_machine[1])
    return {
        "size": size,
        "listed_connected": listed,
        "fill_s": round(fill_s, 2),
        "window_s": round(window, 1),
        "up_loss_max": max(up_loss),
        "up_loss_mean": statistics.fmean(up_loss),
        "down_loss_max": max(down_loss),
        "down_loss_mean": statistics.fmean(down_loss),
        "participants_without_rr": no_rr,
        "heard_min": min(heard),
        "join_p50_s": pct(joins, 0.5) if joins else None,
        "join_max_s": max(joins) if joins else None,
        "joins_timed": len(joins),
        "joins_never_heard": never_heard,
        "post_p50_s": pct(posts, 0.5) if posts else None,
        "post_max_s": max(posts) if posts else None,
        "cpu_cores": {name: round(value, 3) for name, value in cpu.items()},
        "cpu_ms_per_participant_s": {
            name: round(1000 * value / size, 1) for name, value in cpu.items()
        },  # fmt: skip
        "machine_busy": round(busy, 3),
        "udp_rcvbuf_drops": drops,
        "load": [round(x, 2) for x in load],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5,10,20,30,40,50")
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=3.0)
    parser.add_argument("--peer-procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-loss", type=float, default=0.01)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run carcloud (with Janus, nats-server) and the participants at this niceness, "
        "e.g. -10 as root on a machine shared with other work",
    )
    parser.add_argument(
        "--peer-rcvbuf",
        type=int,
        default=0,
        help="receive buffer of the participants' sockets in bytes (0: the system's); "
        "Janus keeps the system's",
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="participants send pre-encoded Opus and decode nothing, but every "
        "--listen-every'th, which decodes and checks what it hears (cheaper participants)",
    )
    parser.add_argument("--listen-every", type=int, default=5)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--keep-going", action="store_true", help="measure every size, past a failed one"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_worker:
        asyncio.run(peer_worker(json.loads(args.peer_worker)))
        return

    from carcloud.runtime.launcher import PlatformProcess

    ensure_media_address()
    if shutil.which("janus") is None:
        sys.exit("janus is missing: apt-get install janus")
    root = Path(tempfile.mkdtemp(prefix="carcloud-bench-calls-"))

    class NicedPlatform(PlatformProcess):
        def command(self) -> list[str]:
            return [*niced(args.nice), *super().command()]

    platform = NicedPlatform(
        root / "data",
        extra_args=[
            "--media", "on", "--media-interfaces", MEDIA_ADDRESS,
            "--media-ports", "43000-43999", "--max-participants-per-brand", "1000",
            "--max-rooms-per-brand", "100", "--room-close-after-s", "3600",
        ],
    )  # fmt: skip
    platform.start(timeout=60)
    results = []
    print(f"load average at start: {os.getloadavg()}, nice {args.nice}", flush=True)
    try:
        assert platform.process is not None
        groups = process_groups(platform.process.pid)
        print(f"processes: {groups}", flush=True)
        platform.ensure_brand("bench")
        with httpx.Client(
            base_url=f"{platform.url}/api/v1",
            headers={"Authorization": f"Bearer {platform.operator_key}"},
            timeout=60,
        ) as api:
            for size in [int(s) for s in args.sizes.split(",")]:
                result = run_size(api, platform.url, groups, size, args)
                results.append(result)
                print(json.dumps(result), flush=True)
                worst = max(result["up_loss_max"], result["down_loss_max"])
                if (worst >= args.max_loss or result["heard_min"] < 0.5) and not args.keep_going:
                    print(
                        f"stopping: size {size} lost {worst:.2%} (limit {args.max_loss:.0%}) "
                        f"or a participant heard too little ({result['heard_min']:.0%})"
                    )
                    break
                ours = sum(result["cpu_cores"].values())
                if ours > args.cores - 0.1 and not args.keep_going:
                    print(
                        f"stopping: Janus, carcloud and the participants use {ours:.2f} "
                        f"of {args.cores} cores"
                    )
                    break
    finally:
        platform.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print()
    print(
        "| N | loss up max / mean | loss down max / mean | heard (min) | join p50 / max "
        "| POST p50 | CPU janus | CPU carcloud | CPU nats | CPU peers | machine busy | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c = r["cpu_cores"]
        per = r["cpu_ms_per_participant_s"]
        print(
            f"| {r['size']} | {r['up_loss_max']:.2%} / {r['up_loss_mean']:.2%} "
            f"| {r['down_loss_max']:.2%} / {r['down_loss_mean']:.2%} | {r['heard_min']:.0%} "
            f"| {r['join_p50_s'] or 0:.2f} / {r['join_max_s'] or 0:.2f} s "
            f"| {1000 * (r['post_p50_s'] or 0):.0f} ms "
            f"| {c['janus']:.2f} ({per['janus']:.1f}) "
            f"| {c['carcloud']:.2f} ({per['carcloud']:.1f}) "
            f"| {c['nats']:.2f} | {c['peers']:.2f} ({per['peers']:.1f}) "
            f"| {r['machine_busy']:.0%} | {r['load'][0]:.2f} |"
        )


if __name__ == "__main__":
    main()
