"""The fan-out of a run, from its EMF lines: which strategy, how long a broadcast takes to
reach its last recipient against N, where an invocation meets the Lambda timeout, what
each strategy costs in Lambda, and what join and leave notices cost.

The EMF lines (``system/handlers/chat.py``, ``Fanout.metrics``):

- a broadcasting invocation (``sendmessage``, ``$connect``, ``$disconnect``): Recipients,
  Delivered, Gone, Failed, FanoutDuration (ms of its posts), property FanoutStrategy
  (absent before strategies existed: ``threads``, the default then); ``batched`` adds
  Batches, counts no deliveries itself and its FanoutDuration is the dispatch only;
- ``batched`` only, one per batch (a FanoutHandler invocation): BatchRecipients,
  Delivered, Gone, Failed, BatchDuration, BatchDelay (ms from the broadcast's start to the
  batch's), dimension Route = the broadcast's, property BroadcastId = its requestId. The
  broadcast reached its last recipient at max(BatchDelay + BatchDuration) over its batches.

An invocation that timed out was killed before printing: its line is missing. The
arithmetic here is pure (lines and figures in, figures out); ``capacity.Analysis`` feeds it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from reports import fit, pricing
from system.fanout_strategies import (
    DEFAULT_FANOUT_BATCH_SIZE,
    DEFAULT_FANOUT_CONCURRENCY,
    FANOUT_STRATEGIES,
)
from system.routes import DEFAULT_TIMEOUT_S

CHAT_ROUTE = "sendmessage"
PRESENCE_ROUTES = ("$connect", "$disconnect")
# What a line without FanoutStrategy used: the only strategy before there were others.
UNLABELLED_STRATEGY = "threads"


# -- the run's lines ---------------------------------------------------------------------

def strategy_of(line: dict) -> str:
    return line.get("FanoutStrategy", UNLABELLED_STRATEGY)


def broadcast_lines(metrics: list[dict], routes=(CHAT_ROUTE,)) -> list[dict]:
    """The broadcasting invocations' lines of ``routes`` (not the batches')."""
    return [m for m in metrics if m.get("Route") in routes and "FanoutDuration" in m
            and "Recipients" in m]


def batch_lines(metrics: list[dict]) -> list[dict]:
    return [m for m in metrics if "BatchRecipients" in m and "BatchDuration" in m]


def run_strategy(metrics: list[dict]) -> tuple[str, str]:
    """(strategy, how it is known): the FanoutStrategy of most of the run's broadcasts."""
    lines = broadcast_lines(metrics, (CHAT_ROUTE, *PRESENCE_ROUTES))
    labelled = Counter(m["FanoutStrategy"] for m in lines if "FanoutStrategy" in m)
    if not labelled:
        return UNLABELLED_STRATEGY, (
            "the run's metric lines carry no FanoutStrategy (written before there were "
            f"strategies, or no broadcast): taken as {UNLABELLED_STRATEGY}")
    strategy, count = labelled.most_common(1)[0]
    if count < len(lines):
        return strategy, (f"FanoutStrategy of {count:,} of the run's {len(lines):,} "
                          f"broadcasts (the others' differ and are left out)")
    return strategy, "FanoutStrategy of the run's metric lines"


def batched_broadcasts(metrics: list[dict], routes=(CHAT_ROUTE,)) -> list[dict]:
    """Each batched broadcast of ``routes`` with its batches (joined on BroadcastId):
    recipients, batches dispatched and logged, the time to its last recipient, and whether
    every batch is accounted for (complete: a batch that timed out logged nothing)."""
    batches = defaultdict(list)
    for line in batch_lines(metrics):
        batches[line.get("BroadcastId")].append(line)
    found = []
    for line in broadcast_lines(metrics, routes):
        if strategy_of(line) != "batched":
            continue
        own = batches.get(line.get("requestId"), [])
        reached = sum(b["BatchRecipients"] for b in own) + line.get("Failed", 0)
        found.append({
            "route": line["Route"], "recipients": line["Recipients"],
            "batches": line.get("Batches", len(own)), "batches_logged": len(own),
            "dispatch_ms": line["FanoutDuration"],
            "largest_batch": max((b["BatchRecipients"] for b in own), default=0),
            "last_recipient_ms": max((b["BatchDelay"] + b["BatchDuration"] for b in own),
                                     default=None),
            "complete": reached >= line["Recipients"]})
    return found


def last_recipient_points(metrics: list[dict], strategy: str) -> tuple[list[list[float]], int]:
    """([recipients, ms to the last recipient] per chat message of ``strategy``, how many
    batched broadcasts were left out because a batch is missing). Sequential and threads:
    from the start of the posts (FanoutDuration); batched: from the broadcast's start, its
    Scan and dispatch included."""
    if strategy != "batched":
        return [[m["Recipients"], m["FanoutDuration"]] for m in broadcast_lines(metrics)
                if strategy_of(m) == strategy and m["Recipients"] > 0], 0
    broadcasts = [b for b in batched_broadcasts(metrics) if b["recipients"] > 0]
    complete = [b for b in broadcasts if b["complete"] and b["last_recipient_ms"] is not None]
    return ([[b["recipients"], b["last_recipient_ms"]] for b in complete],
            len(broadcasts) - len(complete))


def at_full_steps(points: list[list[float]], step_users: list[int]) -> tuple[list[list[float]],
                                                                           str]:
    """The points of the broadcasts sent while a step held all its users (recipients: the
    step's users), and which points those are. A broadcast sent while users came or went
    ran beside their ``$connect`` and ``$disconnect`` (new environments' cold starts, the
    join notices' posts) and scatters the fit: on 2 cores, an 8-recipient broadcast in a
    ramp to 16 took twice as long as a 16-recipient one after it. Every point where the
    full steps' points are too few, or span too narrow a range, for a fit (a plain ramp
    has one step)."""
    sizes = set(step_users)
    full = [p for p in points if p[0] in sizes]
    covered = [p[0] for p in full]
    if full and fit.too_few_or_too_narrow(len(full), [min(covered), max(covered)]) is None:
        return full, (f"the {len(full):,} broadcasts sent while a step held all its users, of "
                      f"{len(points):,}")
    return points, ("every broadcast: those sent while a step held all its users are too few, "
                    "or span too narrow a range, to fit")


def batch_points(metrics: list[dict]) -> list[list[float]]:
    """[recipients, ms of its posts] per batch invocation, whatever its broadcast's route."""
    return [[m["BatchRecipients"], m["BatchDuration"]] for m in batch_lines(metrics)
            if m["BatchRecipients"] > 0]


def batch_size(metrics: list[dict]) -> tuple[int, str]:
    """FANOUT_BATCH_SIZE as the run shows it: a broadcast split into several batches fills
    all but its last, so its largest batch is the size; else the handlers' default."""
    split = [b["largest_batch"] for b in batched_broadcasts(metrics, (CHAT_ROUTE, *PRESENCE_ROUTES))
             if b["batches"] > 1 and b["largest_batch"]]
    if split:
        return max(split), "from the run's broadcasts of several batches"
    return DEFAULT_FANOUT_BATCH_SIZE, "the handlers' default (no broadcast of the run filled one)"


# -- timeouts ------------------------------------------------------------------------------

def timeout_ms_of(invocations: list[dict]) -> float:
    """The chat handlers' Lambda timeout, as the run's invocation records give it (the
    longest, should functions differ), else Lambda's default (3 s)."""
    return max((invocation["timeout_ms"] for invocation in invocations
                if "timeout_ms" in invocation), default=DEFAULT_TIMEOUT_S * 1000)


def timed_out(invocation: dict) -> bool:
    """Whether an invocations.jsonl record timed out (Lambda's TimedOut error)."""
    return invocation.get("error_type") == "TimedOut"


def timeouts_by_function(invocations: list[dict]) -> dict[str, int]:
    """Function -> invocations that timed out, for every function that ran."""
    counts = {invocation["function"]: 0 for invocation in invocations}
    for invocation in invocations:
        if timed_out(invocation):
            counts[invocation["function"]] += 1
    return dict(sorted(counts.items()))


# -- the fit of a duration against recipients ----------------------------------------------

def duration_fit(points: list[list[float]], at: int, timeout_ms: float,
                 no_points: str | None = None) -> dict:
    """A duration (ms) against recipients, fitted and judged (``reports.fit``): R², points,
    the recipients it covers; unless refused, the predicted duration at ``at`` recipients
    and the recipients at which it reaches ``timeout_ms``. ``no_points``: why there are
    none, when the reason is known."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    line = fit.linear_fit(xs, ys)
    x_range = [float(min(xs)), float(max(xs))] if xs else None
    refused = (no_points if not points and no_points
               else fit.refusal(len(points), x_range, line))
    usable = refused is None
    return {"points": points, "count": len(points), "recipients": x_range, "fit": line,
            "refused": refused, "at": at,
            "predicted_ms": line["intercept"] + line["slope"] * at if usable else None,
            "reaches_timeout_at": fit.first_reaching(line, timeout_ms) if usable else None}


def break_point(invocation: dict, timeout_ms: float, batch_size: int | None = None) -> dict:
    """Where the invocation that posts meets the timeout, from its judged fit
    (``duration_fit``): {"users": N or None, "note": one line saying which, or why none}.
    ``batch_size``: the posts are a batch's (batched), so only a batch of up to that many
    recipients must fit in the timeout, however large the broadcast."""
    limit = f"{timeout_ms / 1000:g} s timeout"
    if invocation["refused"] is not None:
        which = "the batches' fit" if batch_size else "the fit"
        return {"users": None,
                "note": f"not predicted: {which} is not extrapolated ({invocation['refused']})"}
    at = invocation["reaches_timeout_at"]
    if at is None:
        return {"users": None, "note": "none: the fan-out's duration does not grow with recipients"}
    if batch_size is None:
        return {"users": at, "note": f"at {at:,} recipients the fan-out, in one invocation, "
                                     f"reaches the {limit}"}
    if at > batch_size:
        full = invocation["fit"]["intercept"] + invocation["fit"]["slope"] * batch_size
        return {"users": None, "note": f"none: a full batch of {batch_size:,} recipients takes "
                                       f"{full:,.0f} ms, so no batch reaches the {limit} at any N"}
    return {"users": at, "note": f"a batch of {at:,} recipients reaches the {limit} (batches of "
                                 f"{batch_size:,}): lower FANOUT_BATCH_SIZE"}


# -- what each strategy costs -------------------------------------------------------------

BROADCASTER, FANOUT_FUNCTION = "SendMessageHandler", "FanoutHandler"  # routes.toml's names
POSTS_AT_ONCE = {"sequential": 1, "threads": DEFAULT_FANOUT_CONCURRENCY,
                 "batched": DEFAULT_FANOUT_CONCURRENCY}  # a batch posts as threads does


@dataclass(frozen=True)
class PostModel:
    """What a broadcast's invocations take, to price the strategies at a target N.

    ``post_ms``: one post_to_connection, call to answer. ``overhead_ms``: an invocation's
    time apart from its posts. ``invoke_ms``: one asynchronous Invoke (batched's dispatch).
    Posts run ``concurrency`` at a time in threads and within a batch, and the time is
    counted in rounds: ceil(posts / concurrency) × post_ms. A batched broadcast is one
    dispatching invocation (its Invokes in rounds too) plus ceil(N / batch_size) batch
    invocations, all taken as full.
    """

    post_ms: float
    overhead_ms: float
    invoke_ms: float
    concurrency: int = DEFAULT_FANOUT_CONCURRENCY
    batch_size: int = DEFAULT_FANOUT_BATCH_SIZE

    def rounds(self, posts: int) -> int:
        return math.ceil(posts / self.concurrency)

    def invocations(self, strategy: str, recipients: int) -> list[tuple[str, int, float]]:
        """(function, invocations per broadcast, ms each) of one broadcast to ``recipients``."""
        if strategy == "sequential":
            return [(BROADCASTER, 1, self.overhead_ms + recipients * self.post_ms)]
        if strategy == "threads":
            return [(BROADCASTER, 1, self.overhead_ms + self.rounds(recipients) * self.post_ms)]
        batches = math.ceil(recipients / self.batch_size)
        return [(BROADCASTER, 1,
                 self.overhead_ms + self.rounds(batches) * self.invoke_ms),
                (FANOUT_FUNCTION, batches, self.overhead_ms
                 + self.rounds(min(recipients, self.batch_size)) * self.post_ms)]

    def reaches_timeout_at(self, strategy: str, timeout_ms: float) -> int | None:
        """The fewest recipients at which one of the broadcast's invocations lasts the
        timeout; None past 10,000,000."""
        low, high = 1, 10_000_000

        def breaks(n: int) -> bool:
            return max(ms for _, _, ms in self.invocations(strategy, n)) >= timeout_ms

        if not breaks(high):
            return None
        while low < high:  # the longest invocation grows with n
            middle = (low + high) // 2
            low, high = (low, middle) if breaks(middle) else (middle + 1, high)
        return low


def strategy_costs(model: PostModel, recipients: int, messages_per_s: float, timeout_ms: float,
                   prices: pricing.PriceTable, memory_mb: int) -> list[dict]:
    """Per strategy, a chat message broadcast to ``recipients``: its invocations, their
    billed duration (each rounded up to 1 ms) and GB-s, its longest invocation against the
    timeout, and the month's Lambda bill at ``messages_per_s``."""
    rows = []
    for strategy in FANOUT_STRATEGIES:
        invocations = model.invocations(strategy, recipients)
        billed_ms = sum(count * math.ceil(ms) for _, count, ms in invocations)
        longest = max(ms for _, _, ms in invocations)
        rows.append({
            "strategy": strategy,
            "invocations": [{"function": f, "per_message": c, "ms": ms}
                            for f, c, ms in invocations],
            "invocations_per_message": sum(c for _, c, _ in invocations),
            "billed_ms_per_message": billed_ms,
            "gb_s_per_message": billed_ms / 1000 * memory_mb / 1024,
            "longest_invocation_ms": longest, "passes_timeout": longest >= timeout_ms,
            "reaches_timeout_at": model.reaches_timeout_at(strategy, timeout_ms),
            "monthly_usd": sum(pricing.lambda_monthly(prices, messages_per_s * c, ms, memory_mb)
                               for _, c, ms in invocations)})
    return rows


def post_ms_from_points(points: list[list[float]], strategy: str) -> float | None:
    """One post's time from measured (recipients, ms) points when no fit may be used: the
    median of ms ÷ rounds of posts (all at once up to the concurrency)."""
    at_once = POSTS_AT_ONCE[strategy]
    values = [ms / math.ceil(n / at_once) for n, ms in points if n > 0]
    return float(np.median(values)) if values else None


# -- join and leave notices ----------------------------------------------------------------

def delivered_posts(metrics: list[dict]) -> dict[str, int]:
    """Posts delivered per route, from the broadcasting lines and (batched) the batches',
    which carry their broadcast's route."""
    posts = defaultdict(int)
    for line in metrics:
        if "FanoutDuration" in line or "BatchDuration" in line:
            posts[line.get("Route")] += int(line.get("Delivered", 0))
    return dict(posts)


def presence_cost(*, notices: bool, users: int, churn_per_s: float, messages_per_s: float,
                  prices: pricing.PriceTable) -> dict:
    """What join and leave notices cost at ``users``: each $connect tells every other
    connection, and each $disconnect the ones left, so N users connecting cost N(N−1)/2
    posts (and as many again leaving); at a steady churn, every session's pair costs about
    2(N−1). Priced as API Gateway messages (each post is one, up to 32 KB)."""
    everyone = users * (users - 1) // 2
    per_s = churn_per_s * 2 * (users - 1) if notices else 0.0
    chat_per_s = messages_per_s * users
    usd_per_post = prices.websocket_usd_per_million_messages / 1e6
    return {"connect_all_posts": everyone if notices else 0, "connect_all_posts_if_on": everyone,
            "connect_all_usd": (everyone if notices else 0) * usd_per_post,
            "connect_all_usd_if_on": everyone * usd_per_post,
            "posts_per_s": per_s, "chat_posts_per_s": chat_per_s,
            "share": per_s / (per_s + chat_per_s) if per_s + chat_per_s else 0.0,
            "monthly_usd": pricing.apigateway_websocket_monthly(prices, per_s, 0)}


# -- flags -----------------------------------------------------------------------------------

def timeout_flag(strategy: str, recipients: int, ms: float, timeout_ms: float, how: str) -> str:
    """'sequential fan-out to 1,000 recipients: predicted 24.1 s, passes the 3 s Lambda
    timeout (how)'."""
    return (f"{strategy} fan-out to {recipients:,} recipients: predicted {ms / 1000:,.1f} s, "
            f"passes the {timeout_ms / 1000:g} s Lambda timeout ({how})")
