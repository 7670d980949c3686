"""The chat page in a real browser: headless Chromium loads `/`, a message is typed and sent, and the streamed reply
appears in the page's DOM with its tokens/s; a second message shows the conversation is kept. A MutationObserver
shows that drawing a reply costs the same per token however long it grows, and Stop cancels the generation on the
server at once. Chromium is driven over the DevTools protocol (a websocket; `websockets` is the only extra package)."""

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

import longcat_testlib as lib

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    def __init__(self, url):
        self.profile = tempfile.mkdtemp(prefix="longcat-chromium-")
        log_path = Path(self.profile) / "chromium.log"
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={self.profile}",
             "--window-size=1000,800", url],
            stdout=subprocess.DEVNULL, stderr=self.log)
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline and self.process.poll() is None:
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", log_path.read_text(errors="replace"))
            port = int(match.group(1)) if match else None
            time.sleep(0.1)
        assert port, "Chromium did not start its DevTools endpoint:\n" + log_path.read_text(errors="replace")
        while True:
            pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            page = next((p for p in pages if p["type"] == "page" and p["url"].startswith(url)), None)
            if page or time.time() > deadline:
                break
            time.sleep(0.1)
        assert page, f"no page for {url}: {pages}"
        self.websocket_url = page["webSocketDebuggerUrl"]
        self.ids = itertools.count(1)
        self.stack = contextlib.ExitStack()

    def __enter__(self):
        self.socket = self.stack.enter_context(connect(self.websocket_url, max_size=None, open_timeout=30))
        return self

    def __exit__(self, *exc):
        self.stack.close()
        self.close()

    def call(self, method, **params):
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") == message_id:
                assert "error" not in reply, reply
                return reply["result"]

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}; page text: {self.js('document.body.innerText')}")

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def screenshot(browser, name):
    shot = Path(os.environ.get("LONGCAT_SCREENSHOT_DIR", tempfile.gettempdir())) / name
    shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
    return shot


def wait_ready(browser):
    browser.wait_for("document.readyState === 'complete' && (document.getElementById('status')?.textContent ?? '').includes('ready')")


def set_options(browser, max_tokens, temperature=0):
    browser.js(f"""(() => {{
        document.getElementById('temperature').value = '{temperature}';
        document.getElementById('max_tokens').value = '{max_tokens}';
    }})()""")


def ignore_eos(browser):
    """Makes every chat request of the page carry `ignore_eos` (a vLLM field the server takes), so a reply runs to
    its max_tokens whatever the random model samples."""
    browser.js("""(() => {
        const original = window.fetch;
        window.fetch = (url, options) => {
            if (String(url).endsWith('/v1/chat/completions') && options && options.body) {
                options = { ...options, body: JSON.stringify({ ...JSON.parse(options.body), ignore_eos: true }) };
            }
            return original(url, options);
        };
    })()""")


def type_and_send(browser, text):
    """Sends `text` and returns the index of its reply's bubble."""
    index = browser.js("document.querySelectorAll('.msg.assistant').length")
    browser.js(f"""(() => {{
        document.getElementById('input').value = {json.dumps(text)};
        document.getElementById('send').click();
    }})()""")
    browser.wait_for(f"document.querySelectorAll('.msg.assistant').length === {index + 1}")
    return index


def reply(browser, index):
    return browser.js(f"""(() => {{
        const m = document.querySelectorAll('.msg.assistant')[{index}];
        return {{ state: m.dataset.state, text: m.querySelector('.text').textContent,
                 stats: (m.querySelector('.stats') || {{}}).textContent || '', error: m.classList.contains('error') }};
    }})()""")


def wait_until_ended(browser, index, timeout=300):
    browser.wait_for(f"['done', 'stopped', 'error'].includes(document.querySelectorAll('.msg.assistant')[{index}].dataset.state)",
                     timeout=timeout)
    return reply(browser, index)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_chat_page_streams_a_reply_and_keeps_the_conversation(server):
    before = server.metrics()
    with Browser(server.base_url + "/") as browser:
        browser.wait_for("document.readyState === 'complete' && (document.getElementById('status')?.textContent ?? '').includes('ready')")
        assert "test-model" in browser.js("document.getElementById('status').textContent")
        # Greedy and short, so the reply is the same on every run.
        browser.js("""(() => {
            document.getElementById('temperature').value = '0';
            document.getElementById('max_tokens').value = '24';
        })()""")

        def send(text):
            browser.js(f"""(() => {{
                document.getElementById('input').value = {json.dumps(text)};
                document.getElementById('send').click();
            }})()""")
            count = browser.js("document.querySelectorAll('.msg.assistant').length")  # the reply's bubble is there already
            browser.wait_for(f"(() => {{ const m = document.querySelectorAll('.msg.assistant'); "
                             f"return m.length === {count} && m[m.length - 1].dataset.state === 'done'; }})()")

        send("Hello there, LongCat!")
        send("And a second question.")
        dom = browser.js("""Array.from(document.querySelectorAll('.msg')).map(m => ({
            role: m.classList.contains('user') ? 'user' : 'assistant',
            text: m.querySelector('.text').textContent,
            stats: (m.querySelector('.stats') || {}).textContent || '',
            error: m.classList.contains('error') }))""")
        assert [m["role"] for m in dom] == ["user", "assistant", "user", "assistant"]
        assert dom[0]["text"] == "Hello there, LongCat!" and dom[2]["text"] == "And a second question."
        for reply in (dom[1], dom[3]):
            assert not reply["error"], reply
            assert reply["text"].strip() and reply["text"] != "(empty reply)", reply
            assert re.search(r"\d+ tokens · [\d.]+ tokens/s", reply["stats"]), reply["stats"]
        # The second turn carried the whole conversation: its prompt is longer than the first prompt and reply.
        first_prompt, second_prompt = (int(re.match(r"(\d+) prompt tokens", r["stats"]).group(1)) for r in (dom[1], dom[3]))
        assert second_prompt > first_prompt + 10
        # The reply really came from the server's streaming endpoint.
        after = server.metrics()
        key = ("longcat_requests_total", frozenset({("endpoint", "chat"), ("outcome", "finished")}))
        assert after.get(key, 0) - before.get(key, 0) == 2

        print(f"screenshot: {screenshot(browser, 'longcat-chat-page.png')}")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_show_compute_shades_each_token_by_its_ffn_experts(server):
    with Browser(server.base_url + "/") as browser:
        wait_ready(browser)
        set_options(browser, 24)
        ignore_eos(browser)
        plain = wait_until_ended(browser, type_and_send(browser, "Shade me."))
        browser.js("document.getElementById('reset').click()")
        browser.js("document.getElementById('show_compute').checked = true")
        index = type_and_send(browser, "Shade me.")
        shaded = wait_until_ended(browser, index)
        spans = browser.js(f"""Array.from(document.querySelectorAll('.msg.assistant')[{index}].querySelectorAll('.text span[data-experts]'))
            .map(s => ({{ experts: Number(s.dataset.experts), background: s.style.background, text: s.textContent }}))""")
        top_k = browser.js("topK")
        print(f"screenshot: {screenshot(browser, 'longcat-chat-page-compute.png')}")
    assert shaded["state"] == plain["state"] == "done"
    assert shaded["text"] == plain["text"], "shading changes the look, not the reply"
    assert len(spans) >= 10 and "".join(s["text"] for s in spans) == shaded["text"]
    assert top_k == 3, "the page scales by the model's moe_topk, which the deltas carry"
    assert all(0 <= s["experts"] <= top_k and s["background"] for s in spans), spans
    assert len({s["experts"] for s in spans}) > 1, "identity experts make the compute vary from token to token"


# The observer counts every mutation under #messages while a reply streams, and the text that whole nodes carry in
# or out (childList records). Appending each delta to the reply's text node costs one characterData record and
# moves no text through nodes; re-setting the whole reply per token would move the reply's whole text every token.
OBSERVE = """(() => {
    const probe = window.__probe = { records: 0, characterData: 0, childList: 0, attributes: 0, nodeText: 0 };
    const count = (list) => {
        for (const r of list) {
            probe.records += 1;
            probe[r.type] += 1;
            if (r.type === 'childList') {
                for (const n of [...r.addedNodes, ...r.removedNodes]) probe.nodeText += (n.textContent || '').length;
            }
        }
    };
    const observer = new MutationObserver(count);
    observer.observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true, attributes: true });
    window.__stopObserving = () => { count(observer.takeRecords()); observer.disconnect(); return probe; };
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_drawing_a_reply_costs_the_same_per_token_however_long_it_grows(server):
    measured = {}
    with Browser(server.base_url + "/") as browser:
        wait_ready(browser)
        ignore_eos(browser)
        for name, max_tokens in (("short", 16), ("long", 800)):
            set_options(browser, max_tokens)
            browser.js(OBSERVE)
            index = type_and_send(browser, f"A {name} reply, please.")
            done = wait_until_ended(browser, index)
            probe = browser.js("window.__stopObserving()")
            assert done["state"] == "done" and not done["error"], done
            tokens = int(re.search(r"(\d+) tokens ·", done["stats"]).group(1))
            assert tokens == max_tokens, done["stats"]
            measured[name] = dict(probe, tokens=tokens, chars=len(done["text"]))
            print(f"{name} reply: {tokens} tokens, {len(done['text'])} characters, {probe['records']} mutation records "
                  f"({probe['characterData']} characterData, {probe['childList']} childList, {probe['attributes']} attributes), "
                  f"{probe['nodeText']} characters moved through nodes")
        print(f"screenshot: {screenshot(browser, 'longcat-chat-page-long.png')}")
    short, long = measured["short"], measured["long"]
    assert long["chars"] > 10 * short["chars"] > 0
    for m in (short, long):
        # At most one record per streamed delta (and a token gives at most one delta), plus a few per reply: its
        # bubbles, their states, the stats line.
        assert m["records"] <= m["tokens"] + 20, m
    # No record carries the reply's text whole: what moves through nodes is the user's message and the stats line,
    # the same for a reply 50 times longer.
    assert long["nodeText"] <= short["nodeText"] + 50, measured
    assert long["nodeText"] < long["chars"], measured


@pytest.fixture(scope="module")
def long_server(long_model):
    """Its own server with an 8192-token context, so that a reply can still be streaming when Stop is clicked."""
    s = lib.Server(long_model, name="test-model")
    yield s
    assert s.stop() == 0


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_stop_cancels_the_generation_and_keeps_the_partial_reply(long_server):
    max_tokens = 8000
    cancelled = ("longcat_requests_total", frozenset({("endpoint", "chat"), ("outcome", "cancelled")}))
    before = long_server.metrics()
    with Browser(long_server.base_url + "/") as browser:
        wait_ready(browser)
        ignore_eos(browser)
        set_options(browser, max_tokens, temperature=0.7)
        first = "Write something very long."
        index = type_and_send(browser, first)
        browser.wait_for(f"document.querySelectorAll('.msg.assistant')[{index}].querySelector('.text').textContent.length >= 40")
        browser.js("document.getElementById('stop').click()")
        stopped = wait_until_ended(browser, index, timeout=60)
        assert stopped["state"] == "stopped" and not stopped["error"], stopped
        assert len(stopped["text"]) >= 40, "the partial reply stays on the page"
        assert "stopped" in stopped["stats"], stopped["stats"]
        assert browser.js("!document.getElementById('send').disabled && document.getElementById('stop').disabled")

        # The server saw the client go away and cancelled the generation (a watchdog, not a timing bound).
        deadline = time.time() + 60
        while long_server.metrics().get(cancelled, 0) - before.get(cancelled, 0) < 1 and time.time() < deadline:
            time.sleep(0.1)
        after = long_server.metrics()
        assert after.get(cancelled, 0) - before.get(cancelled, 0) == 1, "the server did not record the request as cancelled"
        assert lib.metric(after, "longcat_running_sessions") == 0
        generated = lib.metric(after, "longcat_engine_generated_tokens_total") - lib.metric(before, "longcat_engine_generated_tokens_total")
        assert 0 < generated < max_tokens
        # Nothing more was drawn after Stop.
        assert reply(browser, index)["text"] == stopped["text"]

        # The page goes on: the next message is answered, and the partial reply went back as part of the conversation.
        set_options(browser, 8)
        second = "Thanks, that will do."
        following = type_and_send(browser, second)
        done = wait_until_ended(browser, following)
        assert done["state"] == "done", done
        prompt_tokens = int(re.match(r"(\d+) prompt tokens", done["stats"]).group(1))
        status, expected = long_server.json("POST", "/tokenize", {"messages": [
            {"role": "user", "content": first}, {"role": "assistant", "content": stopped["text"]},
            {"role": "user", "content": second}]})
        assert status == 200 and prompt_tokens == expected["count"]
        print(f"screenshot: {screenshot(browser, 'longcat-chat-page-stopped.png')}")
