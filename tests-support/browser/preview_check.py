#!/usr/bin/env python3
"""Loads frameflow's web page in headless Chromium and checks that it works.

Usage: preview_check.py URL SCREENSHOT.png

Drives Debian's chromium through chromedriver's W3C WebDriver protocol (plain HTTP
JSON, standard library only): starts chromedriver on a free 127.0.0.1 port, opens a
headless session with the flags Chromium needs as root on a machine without network,
loads URL, and then checks, with deadlines:
  - every stream card's processed and raw previews show frames (the <img>'s
    naturalWidth becomes > 0 — an MJPEG stream has decoded at least one frame);
  - the stats count up (the 'written' figure of the first stream increases);
then saves a screenshot to SCREENSHOT. Prints one JSON line with what it saw; exits 1
with the reason when a check fails.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("FRAMEFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FRAMEFLOW_CHROMEDRIVER", "/usr/bin/chromedriver")

# Headless, as root, with no network: no sandbox (root), no GPU, and nothing that phones
# home (background networking, component updates, sync, QUIC), on a fresh profile.
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--metrics-recording-only",
    "--window-size=1400,900",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}") from None

    def start(self, profile):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": CHROME_ARGS + [f"--user-data-dir={profile}"]},
        }}}
        self.session = self.call("POST", "/session", caps, timeout=60)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url}, timeout=60)

    def js(self, script):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": []})

    def screenshot(self):
        return base64.b64decode(self.call("GET", self.s("/screenshot")))

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""), timeout=10)
            except Exception:
                pass


STATE_JS = """
const cards = [...document.querySelectorAll('section.stream')];
return cards.map(c => ({
  stream: c.dataset.stream,
  processed: (c.querySelector('img.processed') || {}).naturalWidth || 0,
  raw: (c.querySelector('img.raw') || {}).naturalWidth || 0,
  written: Number((c.querySelector('[data-stat=frames_written]') || {}).textContent) || 0,
}));
"""


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, shot = sys.argv[1], sys.argv[2]
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(exe):
            sys.exit(f"preview_check: {exe} not found (apt-get install chromium chromium-driver)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="ff-chromium-")
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    driver_proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
                                   stdout=log, stderr=subprocess.STDOUT)
    wd = WebDriver(port)
    try:
        deadline = time.time() + 20
        while True:
            try:
                wd.call("GET", "/status", timeout=2)
                break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError("chromedriver did not start")
                time.sleep(0.1)
        wd.start(os.path.join(profile, "profile"))
        wd.go(url)
        # Previews: every card's images decode at least one frame.
        deadline = time.time() + 30
        while True:
            cards = wd.js(STATE_JS)
            if cards and all(c["processed"] > 0 and c["raw"] > 0 for c in cards):
                break
            if time.time() > deadline:
                raise RuntimeError(f"previews show no frames: {cards}")
            time.sleep(0.2)
        # Stats: the written count goes up on the page.
        first = cards[0]["written"]
        deadline = time.time() + 20
        while True:
            now = wd.js(STATE_JS)
            if now and now[0]["written"] > first:
                break
            if time.time() > deadline:
                raise RuntimeError(f"stats do not count up: {first} then {now}")
            time.sleep(0.25)
        time.sleep(1.0)  # one more refresh so the screenshot shows settled stats
        png = wd.screenshot()
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        with open(shot, "wb") as f:
            f.write(png)
        print(json.dumps({"cards": now, "written_before": first, "screenshot": shot, "bytes": len(png)}))
    except Exception as e:
        log.flush()
        with open(log.name) as f:
            tail = f.read()[-2000:]
        print(f"preview_check: {e}\nchromedriver log tail:\n{tail}", file=sys.stderr)
        sys.exit(1)
    finally:
        wd.quit()
        driver_proc.terminate()
        try:
            driver_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver_proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
