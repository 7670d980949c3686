"""The chat page in a real browser: headless Chromium loads `/`, a message is typed and sent, and the streamed reply
appears in the page's DOM with its tokens/s; a second message shows the conversation is kept. Chromium is driven
over the DevTools protocol (a websocket; `websockets` is the only extra package)."""

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

        shot = Path(os.environ.get("LONGCAT_SCREENSHOT_DIR", tempfile.gettempdir())) / "longcat-chat-page.png"
        shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
        print(f"screenshot: {shot}")
