// The chat's browser client: static, no build step, deployable as it is on any host.
// Whatever a server sends reaches the page as textContent only, never as markup.
"use strict";

const HEARTBEAT_MS = 30_000; // the reference client's heartbeat
const HEARTBEAT = { action: "sendmessage", message: "ping" };
const FIRST_RETRY_MS = 1_000; // reconnect backoff: doubles up to LAST_RETRY_MS
const LAST_RETRY_MS = 30_000;
const MAX_LOG_ENTRIES = 1_000;
const URL_KEY = "chat.websocket_url"; // localStorage: remembered across visits
const TOKEN_KEY = "chat.login_token"; // sessionStorage: this tab only
const TOKEN_PARAMETER = "Authorization"; // the query-string parameter the authorizer reads
const NOTICES = new Set(["join", "leave", "presence"]);

const $ = (id) => document.getElementById(id);

let target = null; // { url, token } the user asked for; retries go there too
let socket = null; // the current socket: events of any other one are ignored
let connectedAt = null; // Date.now() at open
let myId = null;
let retryMs = FIRST_RETRY_MS;
const timers = { heartbeat: 0, tick: 0, limit: 0, retry: 0 };

// -- connecting ------------------------------------------------------------------------

function socketUrl({ url, token }) {
  const address = new URL(url); // throws on a malformed URL
  if (address.protocol !== "ws:" && address.protocol !== "wss:") {
    throw new Error("The URL must start with ws:// or wss://");
  }
  if (token) address.searchParams.set(TOKEN_PARAMETER, token);
  return address.href;
}

function connect() {
  clearTimeout(timers.retry);
  hangUp();
  let ws;
  try {
    ws = new WebSocket(socketUrl(target));
  } catch (error) {
    setStatus(`Not connected: ${error.message}`, "error");
    return;
  }
  ws.binaryType = "arraybuffer";
  socket = ws;
  setStatus("Connecting...", "connecting");
  let opened = false;
  ws.onopen = () => {
    if (ws !== socket) return;
    opened = true;
    retryMs = FIRST_RETRY_MS;
    startSession();
    send({ action: "whoami" });
  };
  ws.onmessage = (event) => {
    if (ws === socket) receive(event.data);
  };
  ws.onclose = (event) => {
    if (ws !== socket) return;
    socket = null;
    stopSession();
    // A refused handshake and an unreachable server look alike to a browser: a close
    // before any open.
    retryLater(opened ? `Connection lost (close code ${event.code})` : refusal());
  };
}

function refusal() {
  return target.token
    ? "Refused: check the login token (or the URL)"
    : "Could not connect: check the URL (does the chat need a login token?)";
}

function retryLater(reason) {
  const delay = retryMs;
  retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
  setStatus(`${reason}. Retrying in ${delay / 1000} s.`, "retrying");
  timers.retry = setTimeout(connect, delay);
}

function hangUp() {
  const ws = socket;
  socket = null; // from here on its events are ignored
  stopSession();
  if (ws) ws.close(1000);
}

function disconnect(reason) {
  // The user's choice (the button, or the auto-disconnect they set): no reconnect.
  clearTimeout(timers.retry);
  hangUp();
  setStatus(reason, "disconnected");
}

function send(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

// -- the session -----------------------------------------------------------------------

function startSession() {
  connectedAt = Date.now();
  setStatus("Connected", "connected");
  $("connected-at").textContent = dateTime(new Date(connectedAt));
  tick();
  timers.tick = setInterval(tick, 1000);
  timers.heartbeat = setInterval(() => send(HEARTBEAT), HEARTBEAT_MS);
  armAutoDisconnect();
}

function stopSession() {
  clearInterval(timers.tick);
  clearInterval(timers.heartbeat);
  clearTimeout(timers.limit);
  connectedAt = myId = null;
  for (const id of ["me", "connected-at", "session-time"]) $(id).textContent = "-";
}

function tick() {
  $("session-time").textContent = hms(Date.now() - connectedAt);
}

function limitSeconds() {
  const amount = Number($("limit").value);
  return Number.isFinite(amount) && amount > 0 ? amount * Number($("unit").value) : 0;
}

function armAutoDisconnect() {
  clearTimeout(timers.limit);
  const limit = limitSeconds();
  if (connectedAt === null || !limit) return;
  const remaining = Math.max(0, connectedAt + limit * 1000 - Date.now());
  timers.limit = setTimeout(() => {
    const what = `Auto-disconnected after ${duration(limit)}, as set`;
    show("notice", "session", `${what}. Press Connect to chat again.`);
    disconnect(`Disconnected: ${what}.`);
  }, remaining);
}

// -- what the chat sends ---------------------------------------------------------------

function receive(data) {
  if (typeof data !== "string") {
    show("raw", "server", `(a binary frame of ${data.byteLength} bytes)`);
    return;
  }
  let frame = null;
  try {
    frame = JSON.parse(data);
  } catch {
    // not JSON: shown as it came
  }
  if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
    show("raw", "server", data);
  } else if (frame.type === "whoami" && typeof frame.connection_id === "string") {
    myId = frame.connection_id;
    $("me").textContent = myId;
  } else if (frame.type === "chat") {
    const name = nonEmpty(frame.sender_name) ?? nonEmpty(frame.sender) ?? "unknown";
    // text is left out of a frame that would pass 128 KB: message (formatted) then
    const text = typeof frame.text === "string" ? frame.text : asText(frame.text ?? frame.message);
    const entry = show("chat", name, text, frame.sent_at);
    if (myId !== null && frame.sender === myId) entry.classList.add("mine");
    if (typeof frame.sender === "string") entry.querySelector(".who").title = frame.sender;
  } else if (frame.error !== undefined) {
    show("error", "error", [frame.error, frame.message].filter((v) => v !== undefined)
      .map(asText).join(": "));
  } else if (frame.message === "pong") {
    // the heartbeat's answer
  } else if (typeof frame.message === "string") {
    show("notice", NOTICES.has(frame.type) ? frame.type : "server", frame.message.trim());
  } else {
    show("raw", "server", data);
  }
}

function show(kind, who, text, isoTime) {
  const at = isoTime === undefined ? new Date() : new Date(isoTime);
  const when = Number.isNaN(at.getTime()) ? new Date() : at;
  const entry = element("li", "", kind);
  const time = element("time", clock(when));
  time.dateTime = when.toISOString();
  entry.append(time, " ", element("span", who, "who"), " ", element("span", text, "text"));
  const log = $("log");
  log.append(entry);
  while (log.childElementCount > MAX_LOG_ENTRIES) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
  return entry;
}

// -- small things ----------------------------------------------------------------------

function element(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

const nonEmpty = (value) => (typeof value === "string" && value !== "" ? value : null);
const asText = (value) => (typeof value === "string" ? value : String(JSON.stringify(value)));
const pad = (n) => String(n).padStart(2, "0");
const clock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
const dateTime = (d) =>
  `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;

function hms(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

function duration(seconds) {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return [m && `${m} min`, s && `${s} s`].filter(Boolean).join(" ") || "0 s";
}

function recall(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null; // storage may be off (privacy settings)
  }
}

function remember(storage, key, value) {
  try {
    if (value) storage.setItem(key, value);
    else storage.removeItem(key);
  } catch {
    // not remembered, still used
  }
}

// -- the page --------------------------------------------------------------------------

async function prefillUrl() {
  // The local stack serves config.json beside this page; a static host need not.
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    const config = response.ok ? await response.json() : null;
    if (typeof config?.websocket_url === "string" && !$("url").value) {
      $("url").value = config.websocket_url;
    }
  } catch {
    // no config: the field starts empty
  }
}

$("connection").addEventListener("submit", (event) => {
  event.preventDefault();
  target = { url: $("url").value.trim(), token: $("token").value.trim() };
  remember(localStorage, URL_KEY, target.url);
  remember(sessionStorage, TOKEN_KEY, target.token);
  retryMs = FIRST_RETRY_MS;
  connect();
});

$("disconnect").addEventListener("click", () => disconnect("Disconnected"));
$("limit").addEventListener("input", armAutoDisconnect);
$("unit").addEventListener("input", armAutoDisconnect);

$("chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text.trim()) return;
  if (send({ action: "sendmessage", message: text })) $("message").value = "";
  else show("error", "client", "Not connected: the message was not sent.");
});

const rememberedUrl = recall(localStorage, URL_KEY);
$("token").value = recall(sessionStorage, TOKEN_KEY) ?? "";
if (rememberedUrl) {
  $("url").value = rememberedUrl;
  target = { url: rememberedUrl, token: $("token").value };
  connect();
} else {
  prefillUrl();
}
