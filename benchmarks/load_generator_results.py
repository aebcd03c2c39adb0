"""The load-generator benchmark's figures: one round of a tool, the medians over rounds,
the ratios ChatUser/Artillery, the table printed and the JSON written; and what the
kernel's socket table says is still in flight. Pure (values in, values and text out):
benchmarks/load_generators.py measures, this module counts.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

ARTILLERY = "Artillery"
CHATUSER = "ChatUser"
TOOLS = (ARTILLERY, CHATUSER)
KB = 1024
# A generator process this busy over a window is saturated: what it received then is
# what it can receive.
SATURATED_CPU_PERCENT = 90.0
# Heartbeats are on time when at least this share of those due in a window arrived in it.
HEARTBEATS_ON_TIME_SHARE = 0.95


def per_1000(cpu_percent: float, per_s: float) -> float | None:
    """CPU % of a core per 1,000 frames a second."""
    return None if per_s <= 0 else cpu_percent * 1000 / per_s


def heartbeats_on_time(arrived_per_s: float, due_per_s: float) -> bool | None:
    """None when none were due in the window: it cannot tell."""
    if due_per_s <= 0:
        return None
    return arrived_per_s >= HEARTBEATS_ON_TIME_SHARE * due_per_s


@dataclass(frozen=True)
class SendingRound:
    """One tool's steady window with every connection heartbeating once a second."""

    tool: str
    connections: int
    seconds: float
    cpu_percent: float  # of one core, all the tool's processes
    heartbeats_per_s: float  # counted at the server
    heartbeats_due_per_s: float
    rss_bytes: int
    uss_bytes: int | None
    processes: int

    @property
    def cpu_per_1000_heartbeats(self) -> float | None:
        return per_1000(self.cpu_percent, self.heartbeats_per_s)

    @property
    def rss_kb_per_connection(self) -> float:
        return self.rss_bytes / KB / self.connections

    @property
    def uss_kb_per_connection(self) -> float | None:
        return None if self.uss_bytes is None else self.uss_bytes / KB / self.connections


@dataclass(frozen=True)
class ReceivingRound:
    """One tool's window with the server broadcasting to every connection."""

    tool: str
    connections: int
    seconds: float
    cpu_percent: float
    frames_written_per_s: float  # by the server, in the window
    frames_received_per_s: float
    counted_by: str  # how the received frames were confirmed
    all_received: bool  # every frame written arrived (by the end of the drain)
    drain_s: float | None  # after the window, until all had arrived; None: not all did
    heartbeats_per_s: float  # at the server, in the window
    heartbeats_due_per_s: float
    fanout: dict | None  # ChatUser's: latency_ms (p50, p95, p99, max, count), duplicated,
    # out_of_order

    @property
    def cpu_per_1000_frames(self) -> float | None:
        return per_1000(self.cpu_percent, self.frames_received_per_s)

    @property
    def heartbeats_on_time(self) -> bool | None:
        return heartbeats_on_time(self.heartbeats_per_s, self.heartbeats_due_per_s)


@dataclass(frozen=True)
class Capacity:
    """One ChatUser process under a broadcast meant to saturate it."""

    connections: int
    offered_per_s: float  # frames/s the server wrote
    received_per_s: float  # frames/s the listeners received in the window
    cpu_percent: float
    heartbeats_per_s: float
    heartbeats_due_per_s: float
    loop_lag_max_ms: float
    drain_s: float | None
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def saturated(self) -> bool:
        return self.cpu_percent >= SATURATED_CPU_PERCENT

    @property
    def cpu_us_per_frame(self) -> float | None:
        per_frame = per_1000(self.cpu_percent, self.received_per_s)
        return None if per_frame is None else per_frame * 10  # 1 % of a core / 1,000/s = 10 us

    def limit(self) -> str:
        """What the figure says of the process's capacity."""
        if self.saturated:
            return "its CPU saturated: its capacity"
        behind = ("fell behind: not all received in time" if self.drain_s is None
                  else f"all received {self.drain_s:.1f} s after the window")
        return f"not CPU-saturated, so a lower bound; {behind}"

    @property
    def heartbeats_on_time(self) -> bool | None:
        return heartbeats_on_time(self.heartbeats_per_s, self.heartbeats_due_per_s)


@dataclass(frozen=True)
class Figure:
    """One compared figure: its key in the JSON, its label, and where each round has it."""

    key: str
    label: str
    phase: str  # "sending" | "receiving"
    attribute: str
    digits: int


CPU_FIGURES = (
    Figure("cpu_per_1000_heartbeats_sent", "CPU % of a core per 1,000 heartbeats/s sent",
           "sending", "cpu_per_1000_heartbeats", 1),
    Figure("cpu_per_1000_frames_received", "CPU % of a core per 1,000 frames/s received",
           "receiving", "cpu_per_1000_frames", 1),
)
MEMORY_FIGURES = (
    Figure("rss_kb_per_connection", "RSS per connection (KB; processes' total / connections)",
           "sending", "rss_kb_per_connection", 1),
    Figure("uss_kb_per_connection", "USS per connection (KB; processes' total / connections)",
           "sending", "uss_kb_per_connection", 1),
)
FIGURES = CPU_FIGURES + MEMORY_FIGURES


def median_or_none(values: list[float | None]) -> float | None:
    """The median, or None if a round has no value (it could not be measured)."""
    if not values or any(value is None for value in values):
        return None
    return statistics.median(values)


@dataclass(frozen=True)
class Comparison:
    """Every round of both tools, and what the issue compares."""

    sending: tuple[SendingRound, ...]
    receiving: tuple[ReceivingRound, ...]

    def rounds(self, figure: Figure, tool: str) -> list[float | None]:
        rounds = self.sending if figure.phase == "sending" else self.receiving
        return [getattr(r, figure.attribute) for r in rounds if r.tool == tool]

    def median(self, figure: Figure, tool: str) -> float | None:
        return median_or_none(self.rounds(figure, tool))

    def ratio(self, figure: Figure) -> float | None:
        """ChatUser's median over Artillery's: at most 1 where ChatUser is the cheaper."""
        ours, theirs = self.median(figure, CHATUSER), self.median(figure, ARTILLERY)
        return None if ours is None or not theirs else ours / theirs

    def round_lines(self) -> list[str]:
        """Each round's CPU figure, in the order run, and the median."""
        lines = []
        for figure in CPU_FIGURES:
            for tool in TOOLS:
                values = ", ".join(number(value, 2) for value in self.rounds(figure, tool))
                if not values:
                    continue
                lines.append(f"{figure.label}, {tool}: {values} (median "
                             f"{number(self.median(figure, tool), 2)})")
        return lines

    def table_lines(self) -> list[str]:
        """The side-by-side table (markdown), medians over the rounds."""
        header = (f"| figure (median of rounds) | {ARTILLERY} | {CHATUSER} | "
                  f"{CHATUSER}/{ARTILLERY} |")
        lines = [header, "|---|---|---|---|"]
        for figure in FIGURES:
            values = [number(self.median(figure, tool), figure.digits) for tool in TOOLS]
            lines.append(f"| {figure.label} | {' | '.join(values)} | "
                         f"{number(self.ratio(figure), 2)} |")
        return lines

    def as_json(self) -> dict:
        return {
            "sending": [asdict(r) | {"cpu_per_1000_heartbeats": r.cpu_per_1000_heartbeats,
                                     "rss_kb_per_connection": r.rss_kb_per_connection,
                                     "uss_kb_per_connection": r.uss_kb_per_connection}
                        for r in self.sending],
            "receiving": [asdict(r) | {"cpu_per_1000_frames": r.cpu_per_1000_frames,
                                       "heartbeats_on_time": r.heartbeats_on_time}
                          for r in self.receiving],
            "medians": {figure.key: {tool: self.median(figure, tool) for tool in TOOLS}
                        for figure in FIGURES},
            "ratios_chatuser_to_artillery": {figure.key: self.ratio(figure)
                                             for figure in FIGURES},
        }


def number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


# -- the kernel's socket table ------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """Bytes on loopback TCP sockets of a server's port not yet delivered."""

    server_unsent: int  # in the server's sockets' send queues
    client_unread: int  # in its clients' receive queues: arrived, not yet read

    @property
    def drained(self) -> bool:
        return self.server_unsent == 0 and self.client_unread == 0


LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
LISTEN_STATE = "0A"


def in_flight(proc_net_tcp: str, server_port: int) -> InFlight:
    """From /proc/net/tcp's text: each line's local and remote address (hex ``IP:PORT``),
    state and ``tx_queue:rx_queue`` (hex bytes). The server's sockets have 127.0.0.1 at
    its port as the local address; its clients' as the remote one. The listening socket
    is left out (its queues are its backlog's length and limit, not bytes)."""
    endpoint = f"{LOOPBACK_HEX}:{server_port:04X}"
    unsent = unread = 0
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5 or fields[3] == LISTEN_STATE:
            continue
        tx_queue, rx_queue = (int(part, 16) for part in fields[4].split(":"))
        if fields[1] == endpoint:
            unsent += tx_queue
        elif fields[2] == endpoint:
            unread += rx_queue
    return InFlight(unsent, unread)
