"""The browser chat client (system/local/web/) as a person uses it, in Debian's Chromium
driven by Playwright, against local stacks: two people chat; the session timer and the
auto-disconnect follow the page's clock (Playwright's, not sleeps); a reload reconnects
to the remembered URL; markup in a message stays text; a login token is what lets a page
in when the chat has an authorizer. Frames no chat sends, heartbeats, a socket replaced
while its close is on the way, and backoff are tried against a mocked WebSocket
(``page.route_web_socket``) or a port nobody listens on. The serving rule
(system/local/web_client.py) is tested without a browser.

``UPDATE_SCREENSHOTS=1`` also writes docs/web-client.png (the README shows it).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from chat_harness.tests.chromium import chromium
from reports.snapshot import find_browser
from system.client import WAIT_TIMEOUT_S
from system.handlers.authorizer import mint_token
from system.local.processes import free_port
from system.local.stack_fixtures import stack_fixture
from system.local.web_client import (
    CONTENT_TYPES,
    client_config,
    file_name,
    web_file,
)
from system.tests.machine_tools import needs_tool

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "web-client.png"
START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)  # the page's clock, where it is faked
MOCK_URL = "ws://chat.test/dev"  # no such host: page.route_web_socket answers for it
JWT_SECRET = "web-client-test-secret-of-32-bytes+"

needs_browser = needs_tool("chromium", find=find_browser)

chat_stack = stack_fixture(scope="module", doc="The chat's own handlers, for the web client.")


def jwt_stack_arguments(request: pytest.FixtureRequest) -> list[str]:
    request.getfixturevalue("jwt_secret")  # the stack takes JWT_SECRET from its environment
    return ["--authorizer", "jwt"]


jwt_stack = stack_fixture(jwt_stack_arguments, scope="module",
                          doc="The chat with its JWT authorizer on $connect.")


@pytest.fixture(scope="module")
def jwt_secret():
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("JWT_SECRET", JWT_SECRET)
        yield JWT_SECRET


# -- what the stack serves (no browser) --------------------------------------------------

def test_the_client_is_its_folders_files_by_name():
    names = ["index.html", "script.js", "style.css", "notes.txt"]
    assert file_name("/", names) == "index.html"
    assert file_name("/script.js", names) == "script.js"
    assert file_name("/style.css", names) == "style.css"
    assert file_name("/notes.txt", names) is None  # not a type the client is made of
    for path in ("/missing.js", "/local", "/../launcher.py", "//script.js", "/web/script.js"):
        assert file_name(path, names) is None


def test_config_json_names_the_url_the_browser_reached():
    config = client_config("127.0.0.1", 8765, "local")
    assert config.content_type == CONTENT_TYPES[".json"]
    assert json.loads(config.body) == {"websocket_url": "ws://127.0.0.1:8765/local"}
    assert json.loads(client_config("::1", 8765, "dev").body) == {
        "websocket_url": "ws://[::1]:8765/dev"}


def test_web_file_reads_only_the_folders_own_files(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "script.js").write_text("'use strict';")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.js").write_text("")
    page = web_file(tmp_path, "/", "local", ("127.0.0.1", 9))
    assert (page.content_type, page.body) == ("text/html; charset=utf-8", b"<!doctype html>")
    assert dict(page.headers)["X-Content-Type-Options"] == "nosniff"
    assert web_file(tmp_path, "/script.js", "local", ("127.0.0.1", 9)).content_type == \
        "text/javascript; charset=utf-8"
    assert web_file(tmp_path, "/sub/x.js", "local", ("127.0.0.1", 9)) is None
    assert web_file(tmp_path, "/sub", "local", ("127.0.0.1", 9)) is None
    assert json.loads(web_file(tmp_path, "/config.json", "dev", ("127.0.0.1", 9)).body) == {
        "websocket_url": "ws://127.0.0.1:9/dev"}


# -- the page, as a person uses it --------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Chromium, whose page expectations wait as long as the suite's clients wait for a
    frame."""
    with chromium(WAIT_TIMEOUT_S) as browser:
        yield browser


@pytest.fixture
def new_page(browser):
    """Pages, each a person of its own (own storage); none may throw."""
    contexts, errors = [], []

    def new() -> Page:
        context = browser.new_context(viewport={"width": 900, "height": 760}, timezone_id="UTC")
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        return page

    yield new
    for context in contexts:
        context.close()
    assert errors == []


def status(page: Page):
    return page.get_by_role("status")


def field(page: Page, label: str):
    return page.get_by_label(label, exact=True)


def chat_log(page: Page):
    return page.get_by_role("log", name="Chat log")


def entry(page: Page, text: str):
    return chat_log(page).get_by_role("listitem").filter(has_text=text)


def connect(page: Page, url: str | None = None, token: str = "") -> str:
    """Connect (to the prefilled URL unless ``url``); the connection id the chat tells."""
    if url is None:
        expect(field(page, "WebSocket URL")).not_to_have_value("")  # config.json read
    else:
        field(page, "WebSocket URL").fill(url)
    field(page, "Login token").fill(token)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(status(page)).to_have_text("Connected")
    expect(field(page, "Connection id")).not_to_have_text("-")
    return field(page, "Connection id").inner_text()


def say(page: Page, text: str) -> None:
    field(page, "Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def paused_page(new_page, url: str) -> Page:
    """A page whose timers run only when the test moves its clock."""
    page = new_page()
    page.clock.install(time=START)
    page.goto(url)
    page.clock.pause_at(START + timedelta(seconds=10))
    return page


@needs_browser
def test_two_people_chat_each_message_with_its_sender_and_time(new_page, chat_stack):
    url = chat_stack.file.web_client_url
    alice, bob = new_page(), new_page()
    alice.goto(url)
    expect(field(alice, "WebSocket URL")).to_have_value(chat_stack.file.websocket_url)
    alice_id = connect(alice)
    bob.goto(url)
    bob_id = connect(bob)
    expect(entry(alice, "joined")).to_contain_text(bob_id)

    say(alice, "Hello Bob, the fan-out works")
    say(bob, "Hi Alice: I got it too")
    for page in (alice, bob):
        for sender, text in ((alice_id, "Hello Bob"), (bob_id, "Hi Alice")):
            message = entry(page, text)
            expect(message.locator(".who")).to_have_text(sender)
            expect(message.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(field(alice, "Message")).to_have_value("")
    if os.environ.get("UPDATE_SCREENSHOTS"):
        field(alice, "Auto-disconnect after").fill("30")
        alice.screenshot(path=SCREENSHOT, full_page=True)


@needs_browser
def test_the_session_timer_ticks_with_the_pages_clock(new_page, chat_stack):
    page = paused_page(new_page, chat_stack.file.web_client_url)
    connect(page)
    expect(field(page, "Connected at")).to_have_text("2026-11-26 10:00:10")
    expect(field(page, "Session time")).to_have_text("00:00:00")
    page.clock.fast_forward("01:02:03")
    expect(field(page, "Session time")).to_have_text("01:02:03")
    page.clock.run_for(1000)
    expect(field(page, "Session time")).to_have_text("01:02:04")
    expect(status(page)).to_have_text("Connected")


@needs_browser
def test_auto_disconnect_fires_at_the_set_time_and_does_not_reconnect(new_page, chat_stack):
    page = paused_page(new_page, chat_stack.file.web_client_url)
    field(page, "Auto-disconnect after").fill("90")
    field(page, "Auto-disconnect unit").select_option("seconds")
    connect(page)
    page.clock.run_for(89_000)
    expect(status(page)).to_have_text("Connected")
    page.clock.run_for(1_000)
    expect(status(page)).to_have_text(
        "Disconnected: Auto-disconnected after 1 min 30 s, as set.")
    expect(entry(page, "Auto-disconnected after 1 min 30 s")).to_be_visible()
    expect(field(page, "Session time")).to_have_text("-")
    page.clock.run_for(120_000)  # a user's choice: no reconnect
    expect(status(page)).to_contain_text("Disconnected")
    expect(field(page, "Connection id")).to_have_text("-")


@needs_browser
def test_a_reload_reconnects_to_the_url_the_user_typed(new_page, chat_stack):
    page = new_page()
    page.goto(chat_stack.file.web_client_url)
    typed = chat_stack.file.websocket_url.replace("127.0.0.1", "localhost")
    first_id = connect(page, typed)
    page.reload()
    expect(field(page, "WebSocket URL")).to_have_value(typed)
    expect(status(page)).to_have_text("Connected")
    expect(field(page, "Connection id")).not_to_have_text(
        re.compile(rf"^(-|{re.escape(first_id)})$"))


@needs_browser
def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(new_page, chat_stack):
    page = new_page()
    page.goto(chat_stack.file.web_client_url)
    connect(page)
    payloads = ['<img src=x onerror="window.__xss=1">',
                "<script>window.__xss=2</script><b>bold?</b>"]
    for payload in payloads:
        say(page, payload)
        expect(entry(page, payload).locator(".text")).to_have_text(payload)
    assert page.evaluate("window.__xss") is None
    expect(chat_log(page).locator("img, script, b")).to_have_count(0)


@needs_browser
def test_a_login_token_is_what_lets_a_page_in(new_page, jwt_stack):
    url = jwt_stack.file.web_client_url
    refused = paused_page(new_page, url)
    field(refused, "Login token").fill("not-a-token")
    refused.get_by_role("button", name="Connect", exact=True).click()
    expect(status(refused)).to_have_text(
        "Refused: check the login token (or the URL). Retrying in 1 s.")
    expect(field(refused, "Connection id")).to_have_text("-")

    admitted = new_page()
    admitted.goto(url)
    connect(admitted, token=mint_token(JWT_SECRET, "alice"))
    say(admitted, "signed in")
    expect(entry(admitted, "signed in").locator(".who")).to_have_text("alice")


@needs_browser
def test_refusals_are_retried_with_a_doubling_backoff(new_page, chat_stack):
    page = paused_page(new_page, chat_stack.file.web_client_url)
    field(page, "WebSocket URL").fill(f"ws://127.0.0.1:{free_port()}/nobody")  # unreachable
    page.get_by_role("button", name="Connect", exact=True).click()
    for delay in (1, 2, 4, 8, 16, 30, 30):
        expect(status(page)).to_have_text(re.compile(rf"^Could not connect: .*Retrying in "
                                                     rf"{delay} s\.$"))
        page.clock.run_for(delay * 1000)


# -- against a mocked WebSocket: what no chat sends, and the client's own timers --------------

class MockChat:
    """Answers for MOCK_URL: each connection gets the id mock-1, mock-2, ...; answers
    whoami, and a heartbeat with a frame the log shows (the chat's pong is not shown)."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocketRoute] = []
        page.route_web_socket(MOCK_URL, self._connected)

    def _connected(self, socket: WebSocketRoute) -> None:
        self.sockets.append(socket)
        connection_id = f"mock-{len(self.sockets)}"
        socket.on_message(lambda message: self._received(socket, connection_id, message))

    @staticmethod
    def _received(socket: WebSocketRoute, connection_id: str, message: str | bytes) -> None:
        request = json.loads(message)
        if request == {"action": "whoami"}:
            socket.send(json.dumps({"type": "whoami", "connection_id": connection_id}))
        elif request == {"action": "sendmessage", "message": "ping"}:
            socket.send(json.dumps({"message": "pong"}))
            socket.send(json.dumps({"message": f"heartbeat from {connection_id}"}))


@needs_browser
def test_any_frame_is_shown_safely_as_text(new_page, chat_stack):
    page = new_page()
    chat = MockChat(page)
    page.goto(chat_stack.file.web_client_url)
    connect(page, MOCK_URL)
    [socket] = chat.sockets
    frames = {
        "not JSON <i>at all</i>": "not JSON <i>at all</i>",
        '{"message": 42}': '{"message": 42}',
        "null": "null",
        "[1, 2]": "[1, 2]",
        '{"error": "Invalid request", "message": "Send an action"}':
            "Invalid request: Send an action",
        '{"error": {"code": 7}}': '{"code":7}',
        '{"type": "chat", "sender": "abc=", "sender_name": "alice", "text": "named",'
        ' "sent_at": "2026-11-26T10:00:45.079Z", "message": "[...] abc= named"}': "named",
        '{"type": "chat", "sender": {"x": 1}, "text": 50505, "sent_at": 3}': "50505",
        '{"type": "leave", "message": "A user has left the chat - xyz"}': "left the chat",
        '{"message": "pong"}': None,
        '{"type": "whoami", "connection_id": 424242}': "424242",
    }
    for frame in frames:
        socket.send(frame)
    socket.send(b"\x00\x01")
    expect(entry(page, "(a binary frame of 2 bytes)")).to_be_visible()
    shown = [text for text in frames.values() if text is not None]
    expect(chat_log(page).get_by_role("listitem")).to_have_count(len(shown) + 1)
    for text in shown:
        expect(entry(page, text)).to_have_count(1)
    named = entry(page, "named")
    expect(named.locator(".who")).to_have_text("alice")
    expect(named.locator("time")).to_have_text("10:00:45")
    expect(entry(page, "left the chat").locator(".who")).to_have_text("leave")
    expect(field(page, "Connection id")).to_have_text("mock-1")
    expect(status(page)).to_have_text("Connected")


@needs_browser
def test_a_replaced_sockets_close_leaves_the_new_session_alone(new_page, chat_stack):
    page = paused_page(new_page, chat_stack.file.web_client_url)
    chat = MockChat(page)
    connect(page, MOCK_URL)
    page.get_by_role("button", name="Connect", exact=True).click()  # again: a new socket
    expect(field(page, "Connection id")).to_have_text("mock-2")
    chat.sockets[0].close(code=1000)  # the old socket's close, late
    page.clock.run_for(30_000)
    expect(entry(page, "heartbeat from mock-2")).to_be_visible()
    expect(entry(page, "heartbeat from mock-1")).to_have_count(0)
    expect(chat_log(page)).not_to_contain_text("pong")
    expect(status(page)).to_have_text("Connected")
    expect(field(page, "Connection id")).to_have_text("mock-2")


@needs_browser
def test_an_unexpected_close_reconnects_and_resets_the_backoff(new_page, chat_stack):
    page = paused_page(new_page, chat_stack.file.web_client_url)
    chat = MockChat(page)
    connect(page, MOCK_URL)
    chat.sockets[0].close(code=1011)
    expect(status(page)).to_have_text("Connection lost (close code 1011). Retrying in 1 s.")
    expect(field(page, "Session time")).to_have_text("-")
    page.clock.run_for(1_000)
    expect(field(page, "Connection id")).to_have_text("mock-2")
    chat.sockets[1].close(code=1001)
    expect(status(page)).to_have_text("Connection lost (close code 1001). Retrying in 1 s.")
