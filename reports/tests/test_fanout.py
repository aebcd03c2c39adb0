"""The fan-out section, on synthetic runs (conftest.py's ``a_local_run``): the strategy read
from the EMF lines, fits judged before they are extrapolated, break points and flags, the
run's timeouts, each strategy's Lambda cost, and what join and leave notices cost."""

import json
import random

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from reports import fanout
from reports.capacity import Analysis, Target
from reports.fit import first_reaching, linear_fit, refusal
from reports.pricing import PriceTable, ReportPrices, apigateway_websocket_monthly, lambda_monthly
from reports.render import fanout_figure, render
from reports.tests.conftest import a_local_run, batch_line, broadcast_line, invocation
from system.local.aws_latency import load_latency_table

PRICES = ReportPrices(PriceTable.load())
HEARTBEATS = [invocation("SendMessageHandler", 4.0) for _ in range(20)]


def analysed(run, users=1000) -> Analysis:
    return Analysis(run, Target.of_run(run, users=users), PRICES)


def sequential_lines(post_ms=25.0, overhead_ms=2.0, noise=0.02, seed=1):
    """Chat broadcasts to 5..50 recipients whose duration grows by ``post_ms`` a recipient."""
    rng = random.Random(seed)
    return [broadcast_line(n, overhead_ms + post_ms * n * rng.uniform(1 - noise, 1 + noise),
                           strategy="sequential") for n in range(5, 51) for _ in range(2)]


def flat_lines(strategy="threads", seed=2):
    """Chat broadcasts whose duration is noise, whatever the recipients."""
    rng = random.Random(seed)
    return [broadcast_line(n, rng.uniform(20, 60), strategy=strategy)
            for n in range(5, 51) for _ in range(2)]


# -- the fit and its refusal -----------------------------------------------------------------

def test_a_fit_is_refused_with_too_few_points_too_narrow_a_range_a_poor_r2_or_a_loose_slope():
    line = [[n, 25.0 * n] for n in range(10, 60, 10)]  # 5 points, 10..50
    assert refusal(5, [10, 50], linear_fit(*zip(*line))) is None
    assert refusal(4, [10, 40], linear_fit(*zip(*line[:4]))) == \
        "only 4 points (at least 5 needed)"
    narrow = [[n, 25.0 * n] for n in (40, 42, 45, 47, 50)]
    assert refusal(5, [40, 50], linear_fit(*zip(*narrow))).startswith(
        "the points cover 40 to 50 only (the largest must be at least 2× the smallest)")
    noisy = linear_fit([10, 20, 30, 40, 50], [50, 10, 60, 5, 40])
    assert refusal(5, [10, 50], noisy).startswith(f"R² {noisy['r2']:.3f} is below 0.5")
    # R² 0.6 from 6 scattered points: a slope known only to about ±40 %
    loose = linear_fit([10, 10, 30, 30, 50, 50], [100, 600, 400, 1300, 900, 1600])
    assert loose["r2"] > 0.5
    assert refusal(6, [10, 50], loose).startswith(f"the slope {loose['slope']:.3g} ± ")
    # the same scatter, 20 times over: the slope is pinned down, R² is not higher
    many = linear_fit([10, 10, 30, 30, 50, 50] * 20, [100, 600, 400, 1300, 900, 1600] * 20)
    assert abs(many["r2"] - loose["r2"]) < 1e-9 and refusal(120, [10, 50], many) is None


def test_the_break_point_is_the_first_whole_n_that_reaches_the_limit():
    assert first_reaching({"intercept": 0.0, "slope": 25.0}, 3000) == 120
    assert first_reaching({"intercept": 5.0, "slope": 25.0}, 3000) == 120  # 2,980 at 119
    assert first_reaching({"intercept": 3500.0, "slope": 1.0}, 3000) == 1
    assert first_reaching({"intercept": 40.0, "slope": -0.1}, 3000) is None


# -- sequential and threads ------------------------------------------------------------------

def test_a_sequential_run_fits_well_breaks_near_120_and_flags_1000_recipients():
    analysis = analysed(a_local_run(sequential_lines(), HEARTBEATS))
    section = analysis.fanout
    last = section["last_recipient"]
    assert section["strategy"] == "sequential"
    assert section["strategy_source"] == "FanoutStrategy of the run's metric lines"
    assert last["refused"] is None and last["fit"]["r2"] > 0.99
    assert (last["count"], last["recipients"]) == (92, [5.0, 50.0])
    assert last["predicted_ms"] == pytest.approx(2 + 25 * 1000, rel=0.02)
    assert 115 <= section["break_point"]["users"] <= 125  # (3000 - 2) / 25 = 119.9
    assert section["break_point"]["note"].endswith("reaches the 3 s timeout")
    flag = section["flags"][0]
    assert flag.startswith("sequential fan-out to 1,000 recipients: predicted 2")
    assert " s, passes the 3 s Lambda timeout (from the run's fit: 92 points, R² " in flag
    document = analysis.document()
    assert document["break_points"]["lambda_timeout_users"] == section["break_point"]["users"]
    assert document["fanout"] == section  # one home for the fit
    # one post from the fit: 25 ms a recipient, one at a time
    assert section["lambda_cost"]["post_ms"] == pytest.approx(25, rel=0.02)


def test_a_flat_noisy_run_is_not_extrapolated_and_says_why():
    section = analysed(a_local_run(flat_lines(), HEARTBEATS)).fanout
    last = section["last_recipient"]
    assert last["fit"]["r2"] < 0.8
    assert last["refused"] == (f"R² {last['fit']['r2']:.3f} is below 0.5: the line explains "
                               f"too little of the variation")
    assert last["predicted_ms"] is None and last["reaches_timeout_at"] is None
    assert section["break_point"] == {
        "users": None, "note": f"not predicted: the fit is not extrapolated ({last['refused']})"}
    assert not any("from the run's fit" in flag for flag in section["flags"])
    # still priced: one post from the medians, not from the refused fit
    assert "the median of each broadcast's ms ÷ its rounds of 32 posts" in \
        section["lambda_cost"]["sources"][0]


def test_lines_from_before_strategies_are_threads():
    lines = [{k: v for k, v in line.items() if k != "FanoutStrategy"} for line in flat_lines()]
    strategy, source = fanout.run_strategy(lines)
    assert strategy == "threads" and "carry no FanoutStrategy" in source


def test_with_the_aws_latency_model_sequential_at_1000_passes_the_timeout_from_any_run():
    table = load_latency_table()
    post_ms = table.entries["post_to_connection"].p50_ms
    section = analysed(a_local_run(flat_lines(), HEARTBEATS, aws_latency=table.date)).fanout
    cost = section["lambda_cost"]
    assert (cost["post_ms"], cost["overhead_ms"]) == (post_ms, 4.0)
    assert f"the AWS latency model of {table.date}" in cost["sources"][0]
    sequential = next(r for r in cost["strategies"] if r["strategy"] == "sequential")
    assert sequential["longest_invocation_ms"] == 4.0 + 1000 * post_ms > 3000
    assert fanout.timeout_flag("sequential", 1000, 4.0 + 1000 * post_ms, 3000,
                               f"modelled: {post_ms:,.1f} ms a post, 1 at a time") in section["flags"]


# -- batched ---------------------------------------------------------------------------------

def test_batched_broadcasts_are_joined_to_their_batches_by_broadcast_id():
    lines = [broadcast_line(250, 4.0, strategy="batched", request_id="b1", batches=3),
             batch_line("b1", 100, 80.0, 50.0), batch_line("b1", 100, 90.0, 60.0),
             batch_line("b1", 50, 40.0, 55.0),
             broadcast_line(30, 3.0, strategy="batched", request_id="b2", batches=1),
             batch_line("b2", 30, 20.0, 40.0),
             broadcast_line(40, 3.0, strategy="batched", request_id="b3", batches=1),  # lost
             batch_line("elsewhere", 10, 5.0, 5.0)]
    found = {b["recipients"]: b for b in fanout.batched_broadcasts(lines)}
    assert found[250]["last_recipient_ms"] == 150.0 and found[250]["complete"]
    assert found[30]["last_recipient_ms"] == 60.0
    assert not found[40]["complete"] and found[40]["batches_logged"] == 0
    assert fanout.last_recipient_points(lines, "batched") == ([[250, 150.0], [30, 60.0]], 1)
    assert fanout.batch_size(lines)[0] == 100  # the largest batch of a split broadcast


def batched_run(ms_per_recipient, lose=0):
    """Batched chat broadcasts to 5..50 recipients, one batch each, whose posts take
    ``ms_per_recipient`` a recipient; the last ``lose`` broadcasts lose their batch."""
    lines, rng = [], random.Random(3)
    for i, n in enumerate(list(range(5, 51)) * 2):
        lines.append(broadcast_line(n, 3.0, strategy="batched", request_id=f"b{i}", batches=1))
        if i < 92 - lose:
            lines.append(batch_line(f"b{i}", n, 5 + ms_per_recipient * n * rng.uniform(0.98, 1.02),
                                    60.0))
    return a_local_run(lines, HEARTBEATS)


def test_a_batched_run_is_judged_on_one_batch_not_the_whole_broadcast():
    section = analysed(batched_run(0.8, lose=2)).fanout
    assert section["strategy"] == "batched"
    assert section["batch_size"] == 100  # the handlers' default: no broadcast was split
    assert section["batches"]["at"] == 100 and section["batches"]["refused"] is None
    assert section["break_point"]["users"] is None
    assert section["break_point"]["note"].startswith("none: a full batch of 100 recipients takes")
    assert section["incomplete_broadcasts"] == 2 and section["last_recipient"]["count"] == 90
    assert "2 batched broadcasts lack a batch's line (timed out or lost): left out of the " \
           "time to the last recipient" in section["flags"]


def test_batches_too_large_for_the_timeout_are_flagged():
    section = analysed(batched_run(40.0)).fanout  # 40 ms a recipient: a batch of 75 is 3 s
    assert section["break_point"]["users"] == 75
    assert section["break_point"]["note"] == ("a batch of 75 recipients reaches the 3 s timeout "
                                              "(batches of 100): lower FANOUT_BATCH_SIZE")
    assert section["flags"][0].startswith("batched fan-out to 1,000 recipients: predicted 4.0 s, "
                                          "passes the 3 s Lambda timeout (each batch of 100, "
                                          "from the batches' fit")


# -- cost ------------------------------------------------------------------------------------

def test_each_strategy_is_priced_in_rounds_of_posts():
    model = fanout.PostModel(post_ms=25.0, overhead_ms=5.0, invoke_ms=20.0)
    prices = PRICES.table
    rows = {r["strategy"]: r for r in fanout.strategy_costs(model, 1000, 100.0, 3000, prices, 128)}
    sequential, threads, batched = rows["sequential"], rows["threads"], rows["batched"]
    assert (sequential["invocations_per_message"], sequential["billed_ms_per_message"]) == (1, 25005)
    assert (threads["invocations_per_message"], threads["billed_ms_per_message"]) == (1, 805)
    # 1 dispatch (10 Invokes in one round: 25 ms) + 10 batches of 100 (4 rounds: 105 ms)
    assert (batched["invocations_per_message"], batched["billed_ms_per_message"]) == (11, 1075)
    assert batched["gb_s_per_message"] == 1075 / 1000 * 128 / 1024
    assert [r["passes_timeout"] for r in rows.values()] == [True, False, False]
    assert sequential["reaches_timeout_at"] == 120  # 5 + 25 × 120 = 3,005 ms
    assert threads["reaches_timeout_at"] == 119 * 32 + 1  # the 120th round
    assert batched["reaches_timeout_at"] == (149 * 32) * 100 + 1  # the dispatch's 150th round
    assert batched["monthly_usd"] == pytest.approx(
        lambda_monthly(prices, 100.0, 25.0) + lambda_monthly(prices, 1000.0, 105.0))
    assert sequential["monthly_usd"] == pytest.approx(lambda_monthly(prices, 100.0, 25005.0))


def test_the_run_strategys_cost_is_the_chat_lambda_cost():
    document = analysed(batched_run(0.8)).document()
    rows = document["fanout"]["lambda_cost"]["strategies"]
    batched = next(r for r in rows if r["strategy"] == "batched")
    lam = document["costs"]["lambda"]
    assert lam["sendmessage (chat): FanoutHandler"]["per_s"] == 100.0 * 10
    assert lam["sendmessage (chat)"]["duration_ms"] == batched["invocations"][0]["ms"]


# -- join and leave notices ------------------------------------------------------------------

def test_join_and_leave_notices_are_counted_and_priced():
    lines = [*sequential_lines(),
             *[broadcast_line(n, 1.0, route="$connect", strategy="sequential") for n in range(50)],
             *[broadcast_line(n, 1.0, route="$disconnect", strategy="sequential")
               for n in range(50)],
             broadcast_line(30, 3.0, route="$connect", strategy="batched", request_id="j"),
             batch_line("j", 30, 20.0, 40.0, route="$connect")]  # a batch counts for its route
    analysis = analysed(a_local_run(lines, HEARTBEATS))
    presence = analysis.fanout["presence"]
    chat = sum(line["Recipients"] for line in sequential_lines())
    notices = 2 * sum(range(50)) + 30
    assert presence["notices"] == "on"
    assert presence["run_posts"] == {"presence": notices, "chat": chat,
                                     "share": notices / (notices + chat)}
    assert presence["connect_all_posts"] == 1000 * 999 // 2 == 499_500
    assert presence["connect_all_usd"] == pytest.approx(
        499_500 * PRICES.table.websocket_usd_per_million_messages / 1e6)
    churn = 1000 / 3600  # one session an hour each
    assert presence["posts_per_s"] == pytest.approx(churn * 2 * 999)
    assert presence["monthly_usd"] == pytest.approx(
        apigateway_websocket_monthly(PRICES.table, churn * 2 * 999, 0))
    assert presence["share"] == pytest.approx(churn * 2 * 999 / (churn * 2 * 999 + 100 * 1000))
    assert analysis.run_usage()["apigateway_messages"]["outbound"] == 2000 + notices


def test_notices_off_cost_nothing_but_say_what_on_would():
    run = a_local_run(sequential_lines(), [*HEARTBEATS, invocation("ConnectHandler", 9.0)])
    analysis = analysed(run)
    presence = analysis.fanout["presence"]
    assert presence["notices"] == "off"
    assert (presence["connect_all_posts"], presence["posts_per_s"]) == (0, 0.0)
    assert presence["connect_all_posts_if_on"] == 499_500
    document = analysis.document()
    assert document["costs"]["apigateway"]["outbound_per_s"] == pytest.approx(100.0 * 1000)


# -- timeouts --------------------------------------------------------------------------------

def test_timed_out_invocations_are_counted_per_function_and_flagged():
    invocations = [*HEARTBEATS, invocation("FanoutHandler", 3002.0, error_type="TimedOut"),
                   invocation("FanoutHandler", 3001.0, error_type="TimedOut"),
                   invocation("SendMessageHandler", 3004.0, error_type="TimedOut"),
                   invocation("SendMessageHandler", 12.0, error_type="RuntimeError"),
                   invocation("ConnectHandler", 9.0)]
    assert fanout.timeouts_by_function(invocations) == {
        "ConnectHandler": 0, "FanoutHandler": 2, "SendMessageHandler": 1}
    assert fanout.timeout_ms_of(invocations) == 3000
    assert fanout.timeout_ms_of([invocation("SendMessageHandler", 12, timeout_ms=6000)]) == 6000
    assert fanout.timeout_ms_of([]) == 3000  # Lambda's default
    section = analysed(a_local_run(flat_lines(), invocations)).fanout
    assert section["timeouts"]["FanoutHandler"] == 2
    assert ("3 invocations timed out in this run (FanoutHandler 2, SendMessageHandler 1): a "
            "timed-out invocation prints no metric line, so the fits leave out the slowest "
            "broadcasts") in section["flags"]


# -- the report ------------------------------------------------------------------------------

def test_the_report_shows_the_fan_out_section_and_its_flags(tmp_path):
    table = load_latency_table()
    run = a_local_run([*sequential_lines(), *[broadcast_line(n, 1.0, route="$connect",
                                                             strategy="sequential")
                                              for n in range(50)]],
                      HEARTBEATS, aws_latency=table.date)
    document = json.loads(json.dumps(analysed(run).document(), default=str))  # as capacity.json
    render(document, tmp_path)
    markdown, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    flag = document["fanout"]["flags"][0]
    assert flag.startswith("sequential fan-out to 1,000 recipients: predicted")
    assert f"> **{flag}**" in markdown
    assert f'<p class="warn">{flag}</p>' in html
    for text in ("Lambda per chat message at 1,000 recipients",
                 "N(N−1)/2 = 499,500 posts", "PRESENCE_NOTICES=off"):
        assert text in markdown
    for text in ("Lambda cost of each strategy at 1,000 users", "N(N−1)/2 = <b>499,500 posts</b>",
                 f"AWS latency model of {table.date}", "PRESENCE_NOTICES=off"):
        assert text in html
    assert html.count("<svg") == 3 and "<script" not in html


def right_panel_labels(figure) -> list[str]:
    return figure.axes[1].get_legend_handles_labels()[1]


def test_the_fit_is_drawn_past_the_points_only_when_it_may_be_extrapolated():
    good = analysed(a_local_run(sequential_lines(), HEARTBEATS)).document()
    assert "fit extrapolated" in right_panel_labels(fanout_figure(good))
    poor = analysed(a_local_run(flat_lines(), HEARTBEATS)).document()
    labels = right_panel_labels(fanout_figure(poor))
    assert "fit extrapolated" not in labels
    assert any(label.startswith("not extrapolated: R²") for label in labels)


def test_the_delivery_ratio_axis_clears_the_plot_beside_it():
    figure = fanout_figure(analysed(a_local_run(sequential_lines(), HEARTBEATS)).document())
    FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    _, right, ratio = figure.axes  # the twin axis comes last
    assert ratio.get_ylabel() == "delivery ratio"
    assert not ratio.get_tightbbox(renderer).overlaps(right.get_tightbbox(renderer))


def test_an_r2_just_below_the_bar_does_not_read_as_reaching_it():
    assert refusal(5, [10, 50], {"r2": 0.4996, "slope": 1.0, "slope_se": 0.0}).startswith(
        "R² 0.499 is below 0.5")


def test_the_fit_takes_the_broadcasts_of_full_steps_where_they_can_be_fitted():
    """Steps of 4 and 16 users: the broadcasts sent in the ramp between them (slowed by the
    joins beside them) are left out; a plain ramp, one step, keeps every point."""
    steady = [[4, 120.0 + i] for i in range(5)] + [[16, 430.0 + i] for i in range(5)]
    ramp = [[8, 1100.0], [12, 900.0]]
    assert fanout.at_full_steps(steady + ramp, [4, 16]) == (
        steady, "the 10 broadcasts sent while a step held all its users, of 12")
    points, points_from = fanout.at_full_steps(steady + ramp, [16])
    assert points == steady + ramp and points_from.startswith("every broadcast")
