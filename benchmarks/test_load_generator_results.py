"""The load-generator benchmark's arithmetic (load_generator_results.py) and Artillery's
scripts, without a server: ``python -m pytest benchmarks/test_load_generator_results.py``."""

import pytest
from artillery import heartbeat_flow, listen_flow, parse_node_version, script
from load_generator_results import (
    ARTILLERY,
    CHATUSER,
    FIGURES,
    Capacity,
    Comparison,
    ReceivingRound,
    SendingRound,
    heartbeats_on_time,
    in_flight,
    per_1000,
)

CONNECTIONS = 1000


def sending(tool: str, cpu_percent: float, rss_kb: float = 100.0,
            uss_kb: float | None = 80.0) -> SendingRound:
    """A round of CONNECTIONS connections using ``rss_kb`` and ``uss_kb`` each."""
    return SendingRound(tool, CONNECTIONS, 30.0, cpu_percent, 1000.0, 1000.0,
                        int(rss_kb * 1024 * CONNECTIONS),
                        None if uss_kb is None else int(uss_kb * 1024 * CONNECTIONS), 1)


def receiving(tool: str, cpu_percent: float, received_per_s: float = 4000.0) -> ReceivingRound:
    return ReceivingRound(tool, 2000, 30.0, cpu_percent, 4000.0, received_per_s, "counted",
                          True, 0.0, 0.0, 0.0, None)


def figure(key: str):
    return next(f for f in FIGURES if f.key == key)


def test_cpu_per_1000_frames_a_second():
    assert per_1000(14.2, 5000.0) == pytest.approx(2.84)
    assert per_1000(3.0, 0.0) is None  # nothing counted: no figure, not a division by zero
    assert receiving(CHATUSER, 64.0).cpu_per_1000_frames == 16.0


def test_memory_per_connection_in_kb():
    one = SendingRound(ARTILLERY, 5000, 30.0, 40.0, 5000.0, 5000.0, 385 * 10**6, None, 1)
    assert one.rss_kb_per_connection == pytest.approx(385 * 10**6 / 1024 / 5000)
    assert one.uss_kb_per_connection is None


def test_medians_and_ratios_chatuser_over_artillery():
    comparison = Comparison(
        (sending(ARTILLERY, 8.0), sending(CHATUSER, 14.0), sending(ARTILLERY, 10.0),
         sending(CHATUSER, 12.0), sending(ARTILLERY, 9.0), sending(CHATUSER, 100.0)),
        (receiving(ARTILLERY, 12.0), receiving(CHATUSER, 60.0)),
    )
    sent = figure("cpu_per_1000_heartbeats_sent")
    assert comparison.rounds(sent, ARTILLERY) == [8.0, 10.0, 9.0]
    assert comparison.median(sent, ARTILLERY) == 9.0
    assert comparison.median(sent, CHATUSER) == 14.0  # an outlier round does not move it
    assert comparison.ratio(sent) == pytest.approx(14.0 / 9.0)
    assert comparison.ratio(figure("cpu_per_1000_frames_received")) == pytest.approx(5.0)
    assert comparison.ratio(figure("rss_kb_per_connection")) == pytest.approx(1.0)
    table = comparison.table_lines()
    assert table[0] == "| figure (median of rounds) | Artillery | ChatUser | ChatUser/Artillery |"
    assert "| CPU % of a core per 1,000 heartbeats/s sent | 9.0 | 14.0 | 1.56 |" in table
    document = comparison.as_json()
    assert document["ratios_chatuser_to_artillery"]["cpu_per_1000_frames_received"] == 5.0
    assert len(document["sending"]) == 6


def test_a_figure_a_round_could_not_measure_has_no_median():
    comparison = Comparison((sending(ARTILLERY, 8.0, uss_kb=None), sending(CHATUSER, 12.0)),
                            (receiving(ARTILLERY, 3.0, received_per_s=0.0),))
    assert comparison.median(figure("uss_kb_per_connection"), ARTILLERY) is None
    assert comparison.ratio(figure("uss_kb_per_connection")) is None
    assert comparison.ratio(figure("cpu_per_1000_frames_received")) is None  # no ChatUser round
    uss_row = "| USS per connection (KB; processes' total / connections) | n/a | 80.0 | n/a |"
    assert uss_row in comparison.table_lines()


def test_heartbeats_on_time_only_where_some_were_due():
    assert heartbeats_on_time(250.0, 250.0) is True
    assert heartbeats_on_time(230.0, 250.0) is False
    assert heartbeats_on_time(0.0, 0.0) is None
    capacity = Capacity(10_000, 20_000.0, 19_000.0, 99.0, 250.0, 250.0, 200.0, 0.0, 10.0, 90.0)
    assert capacity.saturated and capacity.heartbeats_on_time


def test_capacity_under_a_saturated_cpu_or_a_lower_bound():
    saturated = Capacity(10_000, 20_000.0, 10_000.0, 99.0, 250.0, 250.0, 200.0, 9.0, 10.0, 90.0)
    assert saturated.cpu_us_per_frame == pytest.approx(99.0)
    assert saturated.limit() == "its CPU saturated: its capacity"
    starved = Capacity(10_000, 20_000.0, 6_400.0, 64.0, 250.0, 250.0, 900.0, 28.1, 1.0, 2.0)
    assert starved.limit() == ("not CPU-saturated, so a lower bound; "
                               "all received 28.1 s after the window")


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00001000:00000003 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:D431 01 00000010:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000020 00:00000000 00000000     0        0 3 1
   3: 0100007F:D432 0100007F:1F91 01 00000000:00000400 00:00000000 00000000     0        0 4 1
   4: 0A000001:1F90 0A000002:D431 01 00000400:00000000 00:00000000 00000000     0        0 5 1
"""


def test_in_flight_counts_the_servers_send_queues_and_its_clients_receive_queues():
    queued = in_flight(PROC_NET_TCP, 0x1F90)
    # The listener's backlog figures, another port's client and another address: left out.
    assert (queued.server_unsent, queued.client_unread) == (0x10, 0x20)
    assert not queued.drained
    assert in_flight(PROC_NET_TCP.splitlines()[0], 0x1F90).drained


def test_node_versions_compare_as_numbers():
    assert parse_node_version("v20.20.2\n") == (20, 20, 2)
    assert parse_node_version("v22.9.0") < (22, 18, 0) <= parse_node_version("v22.18.0")
    with pytest.raises(ValueError):
        parse_node_version("node: not found")


def test_artillery_scripts():
    sends = script("ws://127.0.0.1:8000/", 5000, 500.0, heartbeat_flow("ping", 99.5))
    assert sends["config"]["phases"] == [{"duration": 10, "arrivalCount": 5000}]
    assert sends["scenarios"] == [{"engine": "ws", "flow": [
        {"loop": [{"send": "ping"}, {"think": 1}], "count": 100}]}]
    listens = script("ws://127.0.0.1:8000/", 2000, 300.0, listen_flow(60.0))
    assert listens["config"]["phases"] == [{"duration": 7, "arrivalCount": 2000}]
    assert listens["scenarios"][0]["flow"] == [{"think": 60}]
