"""A local stand-in for the WeCom, DingTalk and Feishu robot webhooks, verifying requests as the platforms do.

It serves the real path shapes on 127.0.0.1 (random port):

- WeCom     POST /cgi-bin/webhook/send?key=KEY                      → {"errcode": 0, "errmsg": "ok"}
- DingTalk  POST /robot/send?access_token=TOKEN&timestamp=..&sign=..  → {"errcode": 0, "errmsg": "ok"}
- Feishu    POST /open-apis/bot/v2/hook/TOKEN                       → {"code": 0, "msg": "success", "data": {}}

Signatures are recomputed here independently of the product code from the shared secret and the
timestamp; a wrong signature or a timestamp more than an hour away is refused with the platform's
error code. The server also enforces the platforms' per-robot limits (20/min WeCom and DingTalk,
100/min Feishu) and can be told to fail the next N requests or to hold requests until released.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import select
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIMITS = {"wecom": 20, "dingtalk": 20, "feishu": 100}


@dataclass
class Delivery:
    platform: str
    token: str
    payload: dict
    at: float
    query: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The visible text of the message, whatever the format."""
        if self.platform == "wecom":
            return self.payload["markdown"]["content"]
        if self.platform == "dingtalk":
            return self.payload["markdown"]["title"] + "\n" + self.payload["markdown"]["text"]
        post = self.payload["content"]["post"]["zh_cn"]
        parts = [post["title"]]
        for line in post["content"]:
            for el in line:
                parts.append(el.get("text", "") + " " + el.get("href", ""))
        return "\n".join(parts)


class RobotServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.robots: dict[tuple[str, str], str] = {}  # (platform, token) -> secret
        self.delivered: list[Delivery] = []
        self.rejected: list[tuple[str, str]] = []  # (platform, reason)
        self.aborted: list[dict] = []  # held requests whose client went away before the answer
        self.arrived = threading.Event()  # set when a request has been read (used with hold)
        self.failures: list[str] = []  # modes for the next requests: "http500", "busy", "rate", "slow"
        self.hold = threading.Event()
        self.hold.set()  # set = not holding
        self.sent_times: dict[tuple[str, str], list[float]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                server.arrived.set()
                if not server.hold.is_set():
                    server.hold.wait(timeout=60)
                    if server._client_gone(self.connection):
                        with server.lock:
                            server.aborted.append({"path": self.path})
                        self.close_connection = True
                        return
                status, answer = server.handle(self.path, self.headers, raw)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- set-up -----------------------------------------------------------------------------
    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, platform: str, token: str, secret: str = "") -> str:
        """Register a robot; returns its webhook URL in the platform's shape."""
        self.robots[(platform, token)] = secret
        if platform == "wecom":
            return f"{self.base}/cgi-bin/webhook/send?key={token}"
        if platform == "dingtalk":
            return f"{self.base}/robot/send?access_token={token}"
        return f"{self.base}/open-apis/bot/v2/hook/{token}"

    def fail_next(self, n: int, mode: str = "http500"):
        with self.lock:
            self.failures.extend([mode] * n)

    def count(self, platform: str | None = None, token: str | None = None) -> int:
        with self.lock:
            return sum(1 for d in self.delivered
                       if (platform is None or d.platform == platform) and (token is None or d.token == token))

    # -- verification -----------------------------------------------------------------------
    @staticmethod
    def _client_gone(sock: socket.socket) -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def handle(self, path: str, headers, raw: bytes) -> tuple[int, dict]:
        url = urllib.parse.urlsplit(path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/cgi-bin/webhook/send":
            platform, token = "wecom", query.get("key", "")
        elif url.path == "/robot/send":
            platform, token = "dingtalk", query.get("access_token", "")
        elif url.path.startswith("/open-apis/bot/v2/hook/"):
            platform, token = "feishu", url.path.rsplit("/", 1)[1]
        else:
            return 404, {"error": "no such path"}
        with self.lock:
            mode = self.failures.pop(0) if self.failures else None
        if mode == "http500":
            return 500, {"error": "internal"}
        if mode == "slow":
            time.sleep(3)
            return 200, self._ok(platform)
        if mode == "busy":  # the platform's "system busy" (retry later)
            return 200, ({"code": 9999, "msg": "system busy"} if platform == "feishu"
                         else {"errcode": -1, "errmsg": "system busy"})
        if mode == "rate":
            return 200, self._rate_limited(platform)
        if "application/json" not in (headers.get("Content-Type") or ""):
            return self._reject(platform, "content type", 400)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            return self._reject(platform, "not json", 400)
        check = {"wecom": self._check_wecom, "dingtalk": self._check_dingtalk, "feishu": self._check_feishu}
        error = check[platform](token, query, payload)
        if error is not None:
            return error
        now = time.time()
        with self.lock:
            window = [t for t in self.sent_times.get((platform, token), []) if t > now - 60]
            if len(window) >= LIMITS[platform]:
                self.rejected.append((platform, "rate limit"))
                return 200, self._rate_limited(platform)
            window.append(now)
            self.sent_times[(platform, token)] = window
            self.delivered.append(Delivery(platform, token, payload, now, query))
        return 200, self._ok(platform)

    @staticmethod
    def _ok(platform):
        if platform == "feishu":
            return {"code": 0, "msg": "success", "data": {}}
        return {"errcode": 0, "errmsg": "ok"}

    @staticmethod
    def _rate_limited(platform):
        if platform == "wecom":
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        if platform == "dingtalk":
            return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        return {"code": 11232, "msg": "frequency limited"}

    def _reject(self, platform, reason, status=200, answer=None):
        with self.lock:
            self.rejected.append((platform, reason))
        return status, answer or {"errcode": 40008, "errmsg": reason}

    def _check_wecom(self, token, query, payload):
        if ("wecom", token) not in self.robots:
            return self._reject("wecom", "unknown key", 200, {"errcode": 93000, "errmsg": "invalid webhook url"})
        kind = payload.get("msgtype")
        if kind not in ("text", "markdown"):
            return self._reject("wecom", "msgtype", 200, {"errcode": 40008, "errmsg": "invalid message type"})
        content = (payload.get(kind) or {}).get("content")
        if not isinstance(content, str) or not content:
            return self._reject("wecom", "empty content", 200, {"errcode": 44004, "errmsg": "empty content"})
        if len(content.encode()) > 4096:
            return self._reject("wecom", "content too long", 200, {"errcode": 40058, "errmsg": "content exceed"})
        return None

    def _check_dingtalk(self, token, query, payload):
        if ("dingtalk", token) not in self.robots:
            return self._reject("dingtalk", "unknown token", 200, {"errcode": 300001, "errmsg": "token is not exist"})
        secret = self.robots[("dingtalk", token)]
        if secret:
            ts, sign = query.get("timestamp", ""), query.get("sign", "")
            if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600 * 1000:
                return self._reject("dingtalk", "stale timestamp", 200,
                                    {"errcode": 310000, "errmsg": "sign not match, timestamp is invalid"})
            expected = base64.b64encode(
                hmac.new(secret.encode("utf-8"), f"{ts}\n{secret}".encode(), digestmod=hashlib.sha256).digest()
            ).decode()
            # parse_qs already URL-decoded `sign`, as DingTalk's server does.
            if not hmac.compare_digest(expected, sign):
                return self._reject("dingtalk", "bad sign", 200, {"errcode": 310000, "errmsg": "sign not match"})
        md = payload.get("markdown") if payload.get("msgtype") == "markdown" else None
        if payload.get("msgtype") == "text":
            md = {"title": "text", "text": (payload.get("text") or {}).get("content")}
        if not md or not md.get("title") or not md.get("text"):
            return self._reject("dingtalk", "bad body", 200, {"errcode": 400105, "errmsg": "param error"})
        return None

    def _check_feishu(self, token, query, payload):
        if ("feishu", token) not in self.robots:
            return self._reject("feishu", "unknown token", 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        secret = self.robots[("feishu", token)]
        if secret:
            ts, sign = str(payload.get("timestamp", "")), str(payload.get("sign", ""))
            if not ts.isdigit() or abs(time.time() - int(ts)) > 3600:
                return self._reject("feishu", "stale timestamp", 200, {
                    "code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})
            key = f"{ts}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, digestmod=hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, sign):
                return self._reject("feishu", "bad sign", 200, {
                    "code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})
        kind = payload.get("msg_type")
        content = payload.get("content")
        if kind == "text":
            ok = isinstance(content, dict) and isinstance(content.get("text"), str)
        elif kind == "post":
            post = (content or {}).get("post") or {}
            ok = bool(post) and all(
                isinstance(v.get("title"), str) and isinstance(v.get("content"), list)
                and all(isinstance(line, list) and all("tag" in el for el in line) for line in v["content"])
                for v in post.values()
            )
        elif kind == "interactive":
            ok = isinstance(payload.get("card"), dict)
        else:
            ok = False
        if not ok:
            return self._reject("feishu", "bad body", 200, {"code": 9499, "msg": "Bad Request"})
        return None
