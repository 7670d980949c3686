/// The chat page served at GET /: one self-contained HTML file (no external scripts, styles or fonts), so it
/// works offline and needs no build step. It streams replies from /v1/chat/completions, keeps the conversation
/// in memory (sent whole with every turn, as the API is stateless), and shows tokens per second.
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

function bubble(role, text) {
  $("empty").style.display = "none";
  const div = document.createElement("div");
  div.className = "msg " + role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.appendChild(body);
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
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
  const textEl = reply.querySelector(".text");
  const messages = $("system").value ? [{ role: "system", content: $("system").value }, ...conversation] : [...conversation];
  const body = {
    messages, stream: true, stream_options: { include_usage: true },
    temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value),
  };
  if (model) body.model = model;
  controller = new AbortController();
  setBusy(true);
  const started = performance.now();
  let firstToken = null, lastToken = null, chunks = 0, usage = null, finish = null, content = "";
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || response.status + " " + response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
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
              content += delta.content;
              textEl.textContent = content;
            }
            if (delta.tool_calls) {
              for (const call of delta.tool_calls) content += "\n[tool call] " + call.function.name + "(" + call.function.arguments + ")";
              textEl.textContent = content;
            }
            if (choice.finish_reason) finish = choice.finish_reason;
          }
          $("messages").scrollTop = $("messages").scrollHeight;
        }
      }
    }
    conversation.push({ role: "assistant", content });
    const tokens = usage ? usage.completion_tokens : chunks;
    const seconds = firstToken !== null && lastToken > firstToken ? (lastToken - firstToken) / 1000 : 0;
    const rate = seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : "–";
    const stats = document.createElement("span");
    stats.className = "stats";
    stats.textContent = (usage ? usage.prompt_tokens + " prompt tokens · " : "") + tokens + " tokens · " + rate + " tokens/s" +
      (firstToken !== null ? " · first token " + ((firstToken - started) / 1000).toFixed(2) + " s" : "") + (finish ? " · " + finish : "");
    reply.appendChild(stats);
    if (!content) textEl.textContent = "(empty reply)";
    reply.dataset.state = "done";
  } catch (e) {
    conversation.pop();  // the turn did not happen; the user can send it again
    reply.classList.add("error");
    textEl.textContent = (content ? content + "\n" : "") + (e.name === "AbortError" ? "(stopped)" : "Error: " + e.message);
    reply.dataset.state = "error";
  } finally {
    controller = null;
    setBusy(false);
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
