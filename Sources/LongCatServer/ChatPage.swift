/// The chat page served at GET /: one self-contained HTML file (no external scripts, styles or fonts), so it
/// works offline and needs no build step. It streams replies from /v1/chat/completions, keeps the conversation
/// in memory (sent whole with every turn, as the API is stateless), and shows tokens per second.
///
/// Drawing a reply costs the same per token however long the reply grows: each delta is appended to the reply's
/// one text node (no re-setting of the whole text), and scrolling, which needs layout, happens at most once per
/// animation frame. Stop aborts the fetch, so the server sees the client go away and cancels the generation; the
/// partial reply stays on the page and in the conversation.
enum ChatPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LongCat chat</title>
<style>
  :root { --bg: #f6f7f9; --fg: #1d2330; --muted: #6b7280; --user: #dbeafe; --bot: #ffffff; --line: #e5e7eb; --accent: #2563eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg);
         display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; gap: 12px; align-items: center; padding: 10px 16px; border-bottom: 1px solid var(--line); background: #fff; }
  header h1 { font-size: 16px; margin: 0; }
  header .status { color: var(--muted); font-size: 13px; }
  header .spacer { flex: 1; }
  button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--line); background: #fff; cursor: pointer; }
  button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
  button:disabled { opacity: .5; cursor: default; }
  details { padding: 8px 16px; background: #fff; border-bottom: 1px solid var(--line); font-size: 13px; }
  details label { display: inline-flex; gap: 6px; align-items: center; margin: 4px 14px 4px 0; }
  details input, details textarea { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 4px; }
  details textarea { width: 100%; min-height: 40px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 80%; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; border: 1px solid var(--line); }
  .msg.user { align-self: flex-end; background: var(--user); }
  .msg.assistant { align-self: flex-start; background: var(--bot); }
  .msg.error { border-color: #fca5a5; background: #fef2f2; }
  .msg.stopped { border-style: dashed; }
  .msg .note { display: block; margin-top: 6px; color: #b91c1c; white-space: pre-wrap; }
  .msg .text span[data-experts] { border-radius: 3px; }
  .legend span { padding: 0 4px; border-radius: 3px; }
  .msg .stats { display: block; margin-top: 6px; color: var(--muted); font-size: 12px; white-space: normal; }
  .empty { color: var(--muted); text-align: center; margin-top: 20vh; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid var(--line); background: #fff; }
  form textarea { flex: 1; font: inherit; padding: 8px; border: 1px solid var(--line); border-radius: 6px; resize: none; height: 64px; }
</style>
</head>
<body>
<header>
  <h1>LongCat chat</h1>
  <span class="status" id="status">connecting…</span>
  <span class="spacer"></span>
  <button type="button" id="reset">New chat</button>
</header>
<details>
  <summary>Settings</summary>
  <label>System prompt</label>
  <textarea id="system" placeholder="optional"></textarea>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7" style="width:5em"></label>
  <label>Max tokens <input id="max_tokens" type="number" min="1" value="256" style="width:6em"></label>
  <label>API key <input id="api_key" type="password" placeholder="if the server needs one" style="width:14em"></label>
  <label><input id="show_compute" type="checkbox"> Show compute: shade each token by the FFN experts per layer that produced it
    <span class="legend" id="legend"></span></label>
</details>
<div id="messages"><div class="empty" id="empty">Say something to start.</div></div>
<form id="form">
  <textarea id="input" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
  <button type="submit" class="primary" id="send">Send</button>
  <button type="button" id="stop" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const conversation = [];     // the conversation: {role, content}
let model = null;
let controller = null;
let epoch = 0;               // bumped by "New chat", so a reply stopped by it leaves the new conversation alone

for (const id of ["system", "temperature", "max_tokens", "api_key"]) {
  const saved = localStorage.getItem("longcat." + id);
  if (saved !== null) $(id).value = saved;
  $(id).addEventListener("change", () => localStorage.setItem("longcat." + id, $(id).value));
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("api_key").value) h["Authorization"] = "Bearer " + $("api_key").value;
  return h;
}

async function connect() {
  try {
    const health = await fetch("/health");
    const models = await fetch("/v1/models", { headers: headers() });
    if (models.ok) model = (await models.json()).data[0].id;
    $("status").textContent = (model || "model") + (health.ok ? " · ready" : " · loading…");
    if (!health.ok) setTimeout(connect, 2000);
  } catch (e) {
    $("status").textContent = "server unreachable";
    setTimeout(connect, 3000);
  }
}

const messagesEl = $("messages");
let stickToBottom = true;   // follow a streaming reply unless the user scrolled up to read
let autoScrollTop = 0;       // where the page last scrolled itself to
let scrollPending = false;
messagesEl.addEventListener("scroll", () => {
  // The page's own scrolling lands here too, often after more text arrived; only scrolling up unsticks.
  stickToBottom = messagesEl.scrollTop >= autoScrollTop - 2 ||
    messagesEl.scrollTop + messagesEl.clientHeight >= messagesEl.scrollHeight - 40;
});

// Scrolling reads the layout, so it is done once per frame, never once per token.
function scrollToEnd() {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    if (!stickToBottom) return;
    messagesEl.scrollTop = messagesEl.scrollHeight;
    autoScrollTop = messagesEl.scrollTop;
  });
}

// Light green (few FFN experts: identity experts cost nothing) to light red (all top-k).
const shades = ["#b9f6ca", "#e6f9a8", "#fff59d", "#ffcc80", "#ff8a80"];
let topK = 4;
function shade(experts) { return shades[Math.min(shades.length - 1, Math.max(0, Math.floor(experts / topK * shades.length)))]; }
for (let i = 0; i < shades.length; i++) {
  const key = document.createElement("span");
  key.style.background = shades[i];
  key.textContent = (i * topK / shades.length).toFixed(1) + "–" + ((i + 1) * topK / shades.length).toFixed(1);
  $("legend").appendChild(key);
}

function bubble(role, text) {
  $("empty").style.display = "none";
  const div = document.createElement("div");
  div.className = "msg " + role;
  const body = document.createElement("span");
  body.className = "text";
  body.appendChild(document.createTextNode(text));
  div.appendChild(body);
  messagesEl.appendChild(div);
  stickToBottom = true;
  scrollToEnd();
  return div;
}

function note(reply, text) {
  const el = document.createElement("span");
  el.className = "note";
  el.textContent = text;
  reply.appendChild(el);
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  document.body.dataset.busy = busy ? "true" : "false";
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  reply.dataset.state = "streaming";
  // The reply's text grows by appending to this one node: the work per delta does not depend on the reply's length.
  const textNode = reply.querySelector(".text").firstChild;
  const messages = $("system").value ? [{ role: "system", content: $("system").value }, ...conversation] : [...conversation];
  const body = {
    messages, stream: true, stream_options: { include_usage: true },
    temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value),
  };
  if (model) body.model = model;
  if ($("show_compute").checked) body.show_compute = true;
  const turn = new AbortController();
  const turnEpoch = epoch;
  controller = turn;
  setBusy(true);
  const started = performance.now();
  let firstToken = null, lastToken = null, chunks = 0, usage = null, finish = null, content = "";
  const append = (piece, experts) => {
    content += piece;
    if (experts === undefined) {
      textNode.appendData(piece);
    } else {  // one shaded span per delta: still constant work per delta
      const span = document.createElement("span");
      span.dataset.experts = experts;
      span.style.background = shade(experts);
      span.textContent = piece;
      reply.querySelector(".text").appendChild(span);
    }
    scrollToEnd();
  };
  // One server-sent event: content deltas are appended as they come.
  const handle = (event) => {
    for (const line of event.split("\n")) {
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") continue;
      const json = JSON.parse(data);
      if (json.error) throw new Error(json.error.message);
      if (json.usage) usage = json.usage;
      for (const choice of json.choices || []) {
        const delta = choice.delta || {};
        if (delta.content) {
          const now = performance.now();
          if (firstToken === null) firstToken = now;
          lastToken = now;
          chunks += 1;
          if (delta.moe_topk) topK = delta.moe_topk;
          append(delta.content, delta.ffn_experts);
        }
        for (const call of delta.tool_calls || []) append("\n[tool call] " + call.function.name + "(" + call.function.arguments + ")");
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  };
  const stats = (extra) => {
    const tokens = usage ? usage.completion_tokens : chunks;
    const seconds = firstToken !== null && lastToken > firstToken ? (lastToken - firstToken) / 1000 : 0;
    const rate = seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : "–";
    const el = document.createElement("span");
    el.className = "stats";
    el.textContent = (usage ? usage.prompt_tokens + " prompt tokens · " : "") + tokens + " tokens · " + rate + " tokens/s" +
      (firstToken !== null ? " · first token " + ((firstToken - started) / 1000).toFixed(2) + " s" : "") + extra;
    reply.appendChild(el);
  };
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: turn.signal });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || response.status + " " + response.statusText);
    }
    const reader = response.body.getReader();
    turn.signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
    const decoder = new TextDecoder();
    let buffer = "";
    while (!turn.signal.aborted) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let start = 0, end;
      while (!turn.signal.aborted && (end = buffer.indexOf("\n\n", start)) >= 0) {
        handle(buffer.slice(start, end));
        start = end + 2;
      }
      buffer = buffer.slice(start);
    }
    if (turn.signal.aborted) throw new DOMException("stopped", "AbortError");
    conversation.push({ role: "assistant", content });
    stats(finish ? " · " + finish : "");
    if (!content) textNode.appendData("(empty reply)");
    reply.dataset.state = "done";
  } catch (e) {
    const current = epoch === turnEpoch;  // false once "New chat" has cleared the conversation
    if (e.name === "AbortError" || turn.signal.aborted) {
      // Stopped: what arrived stays, on the page and in the conversation (when there is any).
      if (current && content) conversation.push({ role: "assistant", content });
      else if (current) conversation.pop();
      reply.classList.add("stopped");
      stats(" · stopped");
      reply.dataset.state = "stopped";
    } else {
      turn.abort();  // an error in the middle of a stream: let the server stop generating
      if (current) conversation.pop();  // the turn did not happen; the user can send it again
      reply.classList.add("error");
      note(reply, "Error: " + e.message);
      reply.dataset.state = "error";
    }
  } finally {
    if (controller === turn) controller = null;
    setBusy(controller !== null);
    scrollToEnd();
  }
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  epoch += 1;
  conversation.length = 0;
  for (const m of [...document.querySelectorAll(".msg")]) m.remove();
  $("empty").style.display = "";
});
setBusy(false);
connect();
</script>
</body>
</html>
"""#
}
