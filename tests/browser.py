"""A headless Chromium driven over the DevTools protocol (websocket-client): load a page, wait for MathJax, read
what the reader would see, take a screenshot."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

import websocket

CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)

# what a page looks like to a reader, collected in the page itself
INSPECT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await new Promise(r => setTimeout(r, 200));
  const imgs = [...document.querySelectorAll('main img, article img, .bd-article img')].map(i => ({
      src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0,
      shown: i.getBoundingClientRect().width > 0}));
  const tables = [...document.querySelectorAll('article table, main table')].map(t => t.rows.length);
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const body = document.querySelector('article') || document.body;
  const text = body.innerText;
  const rawTex = [...body.querySelectorAll('p, li, td, span.math, div.math')].filter(
      e => !e.closest('pre, code, mjx-container') && /\\\(|\\\[|\$\$/.test(e.textContent)).length;
  // clipped: an element wider than the text column with no scrolling box around it, or cut by a box that hides
  const col = (document.querySelector('article.bd-article') || body).getBoundingClientRect();
  const clipped = [];
  for (const el of body.querySelectorAll('table, pre, img, .mb-caption, caption, .cell_output > .output')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || el.closest('details:not([open])')) continue;
    let a = el.parentElement, box = null;
    while (a && a !== body) {
      const ox = getComputedStyle(a).overflowX;
      if (ox !== 'visible') { box = {ox, r: a.getBoundingClientRect()}; break; }
      a = a.parentElement;
    }
    const name = el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ')[0] : '');
    if (box && (box.ox === 'auto' || box.ox === 'scroll')) {
      if (el.matches('caption, .mb-caption') && r.right > box.r.right + 1) clipped.push(name + ' (caption scrolls away)');
      continue;
    }
    if (r.right > (box ? box.r.right : col.right) + 1) clipped.push(`${name} ${Math.round(r.width)} px in ${Math.round(col.width)} px`);
  }
  const shown = [...document.querySelectorAll('main img, article img, .bd-article img')].map(i => ({
      src: i.getAttribute('src'), natural: i.naturalWidth, width: i.getBoundingClientRect().width}));
  // what a reader sees first under the title: the first visible block of text
  const h1 = body.querySelector('h1');
  let first = '';
  if (h1) {
    const blocks = [...body.querySelectorAll('p, pre, div.cell, div.admonition, table')].filter(e =>
        (h1.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) && e.getBoundingClientRect().height > 0
        && !e.closest('details:not([open])'));
    first = blocks.length ? blocks[0].innerText.trim().slice(0, 200) : '';
  }
  const launch = [...document.querySelectorAll('.dropdown-launch-buttons a, a[title^="Open notebooks/"], ' +
                                               'a[data-bs-original-title^="Open notebooks/"]')].map(a => a.href);
  return JSON.stringify({title: document.title, url: location.href, imgs, tables, links, rawTex, clipped, shown,
                         first, launch, text,
                         math: document.querySelectorAll('mjx-container').length,
                         mathErrors: document.querySelectorAll('mjx-merror').length,
                         unresolved: (text.match(/\{glue:|\?\?\?|undefined label/g) || []).length});
})()
"""


class Browser:
    def __init__(self, profile_dir: Path):
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={profile_dir}", "--window-size=1280,1600", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        # no Origin header: Chromium 111+ refuses DevTools connections from an origin it was not told to allow
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.msg_id = 0
        self.call("Page.enable")

    def call(self, method: str, **params):
        self.msg_id += 1
        self.ws.send(json.dumps({"id": self.msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str, timeout: float = 120) -> None:
        """Navigate to ``url`` and wait for the new document to be complete; a redirect page (index.html's meta
        refresh) is followed to the page it names, which is then the one inspected."""
        try:  # mark the current document: the one to wait for is any document without the mark
            self.call("Runtime.evaluate", expression="window.__mbOld = true")
        except RuntimeError:
            pass
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        expr = ("[document.readyState, !!document.querySelector('meta[http-equiv=refresh]'), "
                "!!window.__mbOld]")
        while time.time() < deadline:
            try:
                state = self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")
            except RuntimeError:  # the page navigated while the expression ran: ask again
                state = None
            if state and state == ["complete", False, False]:  # a new document, complete, not a redirect
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not finish loading")

    def inspect(self) -> dict:
        out = self.call("Runtime.evaluate", expression=INSPECT, awaitPromise=True, returnByValue=True)
        return json.loads(out["result"]["value"])

    def screenshot(self, path: Path) -> None:
        height = self.call("Runtime.evaluate", expression="document.documentElement.scrollHeight",
                           returnByValue=True)["result"]["value"]
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(int(height), 6000),
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        self.call("Emulation.clearDeviceMetricsOverride")

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def new_browser() -> Browser:
    return Browser(Path(tempfile.mkdtemp(prefix="mb-chromium-")))
