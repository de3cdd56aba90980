"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol, with scripted faults.

It answers valid BehaviorGen weeks by default (two events per requested day, built from the
prompt's own dates and vocabulary) and counts the requests open at once (`peak_in_flight`). Faults are queued per request: `500`, `429` (with
Retry-After), `sleep:<s>` (a slow answer that trips client timeouts), `truncated`
(finish_reason=length), `malformed` (a body that is not JSON), `garbage` (a completion that does
not parse). Every request body is recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def valid_week(prompt: str) -> str:
    first, last = re.search(r"from \w+ (\d{4}-\d{2}-\d{2}) to \w+ (\d{4}-\d{2}-\d{2})", prompt).groups()
    behaviours = re.search(r"Behaviours: ([^.]+)\.", prompt)
    behaviour = behaviours.group(1).split(", ")[0] if behaviours else "messaging"
    day, end, lines = dt.date.fromisoformat(first), dt.date.fromisoformat(last), []
    while day <= end:
        lines += [f"{WEEKDAYS[day.weekday()]}, 08:00, z1, {behaviour}", f"{WEEKDAYS[day.weekday()]}, 19:30, z2, {behaviour}"]
        day += dt.timedelta(days=1)
    return "\n".join(lines)


class FakeOpenAI:
    def __init__(self, delay_s: float = 0.0):
        self.faults: list[str] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.in_flight = 0  # requests being answered now, and the most at once
        self.peak_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            # headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm holds
            # the body until the client's delayed ACK (~40 ms a request on Linux)
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                with outer.lock:
                    outer.in_flight += 1
                    outer.peak_in_flight = max(outer.peak_in_flight, outer.in_flight)
                try:
                    self._answer()
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def _answer(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fault = outer.faults.pop(0) if outer.faults else "ok"
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if fault == "500":
                    return self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                if fault == "429":
                    return self._send(429, {"error": {"message": "slow down", "type": "rate_limit"}},
                                      {"Retry-After": "1"})
                if fault.startswith("sleep:"):
                    time.sleep(float(fault.split(":")[1]))
                if fault == "malformed":
                    raw = b'{"id": "x", "choices": [ {"message": '
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                prompt = body["messages"][-1]["content"]
                text = {"garbage": "Sure! Here is the week you asked for:\n- breakfast"}.get(fault) or valid_week(prompt)
                finish = "length" if fault == "truncated" else "stop"
                if fault == "truncated":
                    text = text[: len(text) // 2]
                self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": finish,
                                              "message": {"role": "assistant", "content": text}}],
                                 "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4,
                                           "total_tokens": (len(prompt) + len(text)) // 4}})

            def _send(self, code, obj, headers=None):
                raw = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # a standalone server for subprocess tests: prints its base URL
    import sys

    fake = FakeOpenAI(delay_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    with fake:
        print(fake.base_url, flush=True)
        log_path = sys.argv[2] if len(sys.argv) > 2 else None
        while True:
            time.sleep(0.2)
            if log_path:
                with fake.lock:
                    snapshot = list(fake.requests)
                with open(log_path + ".tmp", "w") as fh:
                    json.dump(snapshot, fh)
                import os

                os.replace(log_path + ".tmp", log_path)
