#!/usr/bin/env python3
"""Loads one page in headless Chromium with a cookie set, through the Chrome DevTools Protocol
(standard library only: a minimal WebSocket client), and prints a JSON object:

  {"errors": [...], "text": "<document.body.innerText>", "path": "<location.pathname>",
   "screenshot": "<file>"}

`errors` holds every console error and assertion, uncaught exception, and browser log entry
of level error (CSP violations, failed loads) seen while the page loaded.

Usage: browser_check.py URL --cookie NAME=VALUE --screenshot FILE.png
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WebSocket:
    """A client for text frames only: enough for the DevTools protocol on 127.0.0.1."""

    def __init__(self, url):
        rest = url[len("ws://"):]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("the DevTools endpoint closed during the handshake")
            buffer += chunk
        head, self.buffer = buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"no WebSocket upgrade: {head[:200]!r}")

    def send(self, message):
        data = json.dumps(message).encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", len(data))
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", len(data))
        mask = os.urandom(4)
        header += mask
        self.sock.sendall(bytes(header) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("the DevTools endpoint closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def receive(self):
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            if second & 0x80:
                self._read(4)
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 8:
                raise EOFError("the DevTools endpoint closed the WebSocket")
            if opcode in (9, 10):
                continue
            message += payload
            if first & 0x80:
                return json.loads(message)


class DevTools:
    def __init__(self, socket_url):
        self.ws = WebSocket(socket_url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self.ws.receive()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method, timeout):
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event["method"] == method:
                return event
        while time.monotonic() < deadline:
            message = self.ws.receive()
            if "method" in message:
                self.events.append(message)
                if message["method"] == method:
                    return message
        raise TimeoutError(f"no {method} within {timeout} s")

    def drain(self, seconds):
        self.ws.sock.settimeout(seconds)
        try:
            while True:
                message = self.ws.receive()
                if "method" in message:
                    self.events.append(message)
        except (socket.timeout, TimeoutError):
            pass
        finally:
            self.ws.sock.settimeout(60)


def errors(events):
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--cookie", action="append", default=[])
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        sys.exit("chromium is not installed (Deploy/local/services.sh up installs it)")
    profile = tempfile.mkdtemp(prefix="mingus-chromium-")
    process = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1280,1800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 60
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                sys.exit("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(target for target in targets if target.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Network", "Runtime", "Log", "Page"):
            tools.call(f"{domain}.enable")
        for cookie in args.cookie:
            name, value = cookie.split("=", 1)
            tools.call("Network.setCookie", name=name, value=value, url=args.url, httpOnly=True, sameSite="Strict")
        tools.call("Page.navigate", url=args.url)
        tools.wait_for("Page.loadEventFired", 60)
        tools.drain(1.0)
        text = tools.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)["result"].get("value", "")
        path = tools.call("Runtime.evaluate", expression="location.pathname", returnByValue=True)["result"].get("value", "")
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        with open(args.screenshot, "wb") as file:
            file.write(base64.b64decode(shot["data"]))
        print(json.dumps({"errors": errors(tools.events), "text": text, "path": path, "screenshot": args.screenshot}))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
