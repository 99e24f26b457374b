#!/usr/bin/env python3
"""A local stand-in for VAPI, Retell and Bland, for pg_dialer's tests, demo
and benchmark (standard library only).

It speaks the three create-call APIs as the providers document them
(docs/providers.md) under one port:

    POST /vapi/call                     VAPI   (Authorization: Bearer <key>)
    POST /retell/v2/create-phone-call   Retell (Authorization: Bearer <key>)
    POST /bland/v1/calls                Bland  (authorization: <key>)

so that pg_dialer.<api>_base_url = 'http://127.0.0.1:<port>/<api>'. Each
request's key and body are checked (401 and 400 in the provider's own error
format otherwise); a good one is answered with a call id after
--answer-ms, and after --call-ms more the call ends: its end-of-call result,
in that provider's own webhook format, goes to record_call_result() through
one psql session (--psql; a new one, sending again what the last did not
confirm, after the server restarted). Calls in progress are counted per provider from
the answer until the result is recorded; the count must never pass the
provider's limit (--provider NAME:API:KEY:LIMIT), and a call queue id placed
twice is counted too.

    GET  /_stats     counts per provider, as JSON
    GET  /_lags      how late call ends fire, and how long results take to be
                     recorded after them (averages, ms)
    GET  /_requests  every create-call request received (no keys), as JSON
    POST /_control   {"provider": "vapi", "mode": "429", "times": 3,
                      "retry_after": "2"} answers the next 3 requests so;
                     modes: ok, 429, 500, 400, hang, close, garbage;
                     {"answer_ms": 20, "call_ms": 200} changes the timings

Prints the port it listens on, then serves until killed.
"""

import argparse
import gc
import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PATHS = {"/vapi/call": "vapi", "/retell/v2/create-phone-call": "retell", "/bland/v1/calls": "bland"}
VAPI_FIELDS = {"assistantId", "assistant", "squadId", "squad", "workflowId", "workflow", "phoneNumberId",
               "phoneNumber", "customer", "customerId", "customers", "assistantOverrides", "name",
               "transport", "schedulePlan", "squadOverrides", "workflowOverrides"}


class Provider:
    def __init__(self, name, api, key, limit):
        self.name, self.api, self.key, self.limit = name, api, key, int(limit)
        self.in_progress = 0
        self.max_in_progress = 0
        self.counts = {"requests": 0, "placed": 0, "results": 0, "bad_auth": 0, "malformed": 0,
                       "refused": 0, "over_limit": 0, "duplicates": 0}
        self.scripted = []  # answers to give next: (mode, retry_after)


class Mock:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.providers = {}
        for spec in args.provider:
            name, api, key, limit = spec.split(":", 3)
            self.providers[api] = Provider(name, api, key, limit)
        self.answer_ms = args.answer_ms
        self.call_ms = args.call_ms
        self.placed_ids = set()
        self.requests = []
        self.results = queue.Queue()
        self.psql_command = args.psql
        self.psql = None
        self.unconfirmed = []  # (statement, when the call ended) written to psql, not yet confirmed
        # how late call ends fire, and how long results take to be recorded
        self.lag = {"timer_ms": 0.0, "delivered": 0, "delivery_ms": 0.0}
        threading.Thread(target=self.deliver, daemon=True).start()

    # ---------------------------------------------------------------- calls
    def check(self, provider, headers, body):
        """None if the request is as the provider documents it, else why not."""
        auth = headers.get("authorization", "")
        good = {"vapi": ["Bearer " + provider.key], "retell": ["Bearer " + provider.key],
                "bland": [provider.key, "Bearer " + provider.key]}[provider.api]
        if auth not in good:
            return 401, "bad key"
        if not isinstance(body, dict):
            return 400, "the body is not a JSON object"
        if provider.api == "vapi":
            unknown = set(body) - VAPI_FIELDS
            if unknown:
                return 400, ["property %s should not exist" % k for k in sorted(unknown)]
            if not isinstance(body.get("assistantId"), str) or not isinstance(body.get("phoneNumberId"), str):
                return 400, ["assistantId must be a string", "phoneNumberId must be a string"]
            number = (body.get("customer") or {}).get("number")
            if not isinstance(number, str) or not E164.match(number):
                return 400, ["customer.number must be a valid phone number in the E.164 format"]
            overrides = body.get("assistantOverrides") or {}
            if not isinstance(overrides.get("variableValues", {}), dict):
                return 400, ["assistantOverrides.variableValues must be an object"]
            voice = overrides.get("voice")
            if voice is not None and not (isinstance(voice, dict) and voice.get("provider") and voice.get("voiceId")):
                return 400, ["assistantOverrides.voice.provider must be one of the following values"]
        elif provider.api == "retell":
            for field in ("from_number", "to_number"):
                if not isinstance(body.get(field), str) or not E164.match(body[field]):
                    return 400, "%s must be a valid E.164 number" % field
            variables = body.get("retell_llm_dynamic_variables", {})
            if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
                return 400, "retell_llm_dynamic_variables must map strings to strings"
        else:
            if not isinstance(body.get("phone_number"), str) or not E164.match(body["phone_number"]):
                return 400, "phone_number is required"
            if not body.get("pathway_id") and not body.get("task"):
                return 400, "task or pathway_id is required"
            if not isinstance(body.get("request_data", {}), dict):
                return 400, "request_data must be an object"
        return None

    def error_body(self, provider, status, message):
        if provider.api == "vapi":
            return {"message": message, "error": {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests",
                                                   500: "Internal Server Error"}.get(status, "Error"),
                    "statusCode": status}
        if provider.api == "retell":
            return {"status": "error", "message": message if isinstance(message, str) else "; ".join(message)}
        return {"status": "error", "message": message if isinstance(message, str) else "; ".join(message)}

    def metadata_id(self, provider, body):
        if provider.api == "vapi":
            return ((body.get("assistantOverrides") or {}).get("metadata") or {}).get("call_queue_id")
        return (body.get("metadata") or {}).get("call_queue_id")

    def create(self, provider, headers, raw):
        """(status, headers, body or None for hang/close) of a create-call request."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self.lock:
            provider.counts["requests"] += 1
            shown = {k: v for k, v in headers.items() if k != "authorization"}
            self.requests.append({"provider": provider.api, "at": time.time(), "headers": shown, "body": body,
                                  "key_ok": headers.get("authorization", "").endswith(provider.key)})
            mode, retry_after = provider.scripted.pop(0) if provider.scripted else ("ok", None)
        problem = self.check(provider, headers, body)
        if problem:
            status, message = problem
            with self.lock:
                provider.counts["bad_auth" if status == 401 else "malformed"] += 1
            if status == 401:
                message = {"vapi": "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
                           "retell": "API key is missing or invalid.", "bland": "Invalid API key."}[provider.api]
            return status, {}, self.error_body(provider, status, message)
        time.sleep(self.answer_ms / 1000)
        if mode == "429":
            with self.lock:
                provider.counts["refused"] += 1
            return 429, ({"Retry-After": retry_after} if retry_after else {}), \
                self.error_body(provider, 429, "Account rate limited, please throttle your requests.")
        if mode == "500":
            with self.lock:
                provider.counts["refused"] += 1
            return 500, {}, self.error_body(provider, 500, "An unexpected server error occurred.")
        if mode == "400":
            with self.lock:
                provider.counts["refused"] += 1
            return 400, {}, self.error_body(provider, 400, ["customer.number is on the do-not-call list"])
        if mode in ("hang", "close"):
            with self.lock:
                provider.counts["refused"] += 1
            return mode, {}, None
        if mode == "garbage":
            with self.lock:
                provider.counts["refused"] += 1
            return 502, {}, b"\x00\xff<html>upstream garbage"
        call_id = str(uuid.uuid4()) if provider.api != "retell" else uuid.uuid4().hex
        queue_id = self.metadata_id(provider, body)
        with self.lock:
            provider.in_progress += 1
            provider.max_in_progress = max(provider.max_in_progress, provider.in_progress)
            if provider.in_progress > provider.limit:
                provider.counts["over_limit"] += 1
            provider.counts["placed"] += 1
            if queue_id in self.placed_ids:
                provider.counts["duplicates"] += 1
            self.placed_ids.add(queue_id)
        threading.Timer(self.call_ms / 1000, self.ended, (provider, call_id, body, time.time() + self.call_ms / 1000)).start()
        if provider.api == "vapi":
            return 201, {}, {"id": call_id, "orgId": "mock-org", "type": "outboundPhoneCall", "status": "queued",
                             "assistantId": body.get("assistantId"), "phoneNumberId": body.get("phoneNumberId"),
                             "customer": body.get("customer"),
                             "subscriptionLimits": {"concurrencyBlocked": False, "concurrencyLimit": provider.limit}}
        if provider.api == "retell":
            return 201, {}, {"call_id": call_id, "call_type": "phone_call", "direction": "outbound",
                             "from_number": body["from_number"], "to_number": body["to_number"],
                             "call_status": "registered", "metadata": body.get("metadata")}
        return 200, {}, {"status": "success", "message": "Call successfully queued.", "call_id": call_id,
                         "batch_id": None}

    def ended(self, provider, call_id, body, due):
        with self.lock:
            self.lag["timer_ms"] += (time.time() - due) * 1000
        seconds = max(1, round(self.call_ms / 1000))
        now_ms = int(time.time() * 1000)
        if provider.api == "vapi":
            result = {"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
                                  "call": {"id": call_id, "type": "outboundPhoneCall", "status": "ended",
                                           "customer": body.get("customer"),
                                           "assistantOverrides": body.get("assistantOverrides")},
                                  "durationSeconds": seconds,
                                  "artifact": {"transcript": "AI: Hello. User: Hi, thanks for calling."},
                                  "analysis": {"summary": "The mock call went well."}}}
        elif provider.api == "retell":
            result = {"event": "call_ended",
                      "call": {"call_id": call_id, "call_type": "phone_call", "call_status": "ended",
                               "from_number": body["from_number"], "to_number": body["to_number"],
                               "start_timestamp": now_ms - seconds * 1000, "end_timestamp": now_ms,
                               "duration_ms": seconds * 1000, "disconnection_reason": "user_hangup",
                               "transcript": "Agent: Hello.\nUser: Hi, thanks for calling.",
                               "metadata": body.get("metadata")}}
        else:
            result = {"call_id": call_id, "to": body["phone_number"], "from": body.get("from"), "completed": True,
                      "status": "completed", "queue_status": "complete", "answered_by": "human",
                      "call_length": seconds / 60, "corrected_duration": str(seconds),
                      "concatenated_transcript": "assistant: Hello. user: Hi, thanks for calling.",
                      "summary": "The mock call went well.", "error_message": None,
                      "metadata": body.get("metadata")}
        self.results.put((provider, result, time.time()))

    def start_psql(self):
        """A psql session (again after the server restarted), and the
        statements the last one did not confirm, sent again (a result
        recorded twice is recorded once)."""
        while True:
            # ON_ERROR_STOP: a lost connection ends psql (else it goes on,
            # echoing confirmations of statements that never ran).
            self.psql = subprocess.Popen(self.psql_command + " -v ON_ERROR_STOP=1", shell=True, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
            try:
                # record_call_result() through a function of this session:
                # a result the database refuses is delivered all the same
                self.psql.stdin.write("SET client_min_messages = warning;\nSET ROLE service_role;\n"
                                      "CREATE FUNCTION pg_temp.deliver(body jsonb) RETURNS void LANGUAGE plpgsql AS $f$ "
                                      "BEGIN PERFORM record_call_result(body); EXCEPTION WHEN OTHERS THEN "
                                      "RAISE WARNING 'record_call_result: %', SQLERRM; END $f$;\n"
                                      "\\echo mock-ready\n")
                self.psql.stdin.flush()
                if self.psql.stdout.readline().strip() == "mock-ready":
                    break
            except OSError:
                pass
            self.psql.kill()
            time.sleep(0.5)
        psql = self.psql
        threading.Thread(target=self.confirm, args=(psql,), daemon=True).start()
        with self.lock:
            again = list(self.unconfirmed)
        for statement, _ in again:
            psql.stdin.write(statement)
        psql.stdin.flush()

    def confirm(self, psql):
        """Reads psql's confirmations, one per statement, in order."""
        for line in psql.stdout:
            if line.strip() == "mock-delivered":
                with self.lock:
                    if self.unconfirmed:
                        _, ended_at = self.unconfirmed.pop(0)
                        self.lag["delivered"] += 1
                        self.lag["delivery_ms"] += (time.time() - ended_at) * 1000

    def deliver(self):
        """Hands each ended call's result to record_call_result(), in order,
        and frees its place when it is handed over (before the database
        records it: never later than the database frees it)."""
        if self.psql_command:
            self.start_psql()
        while True:
            try:
                provider, result, ended_at = self.results.get(timeout=0.5)
            except queue.Empty:
                if self.psql_command and self.psql.poll() is not None:
                    self.start_psql()
                continue
            if self.psql_command:
                text = json.dumps(result).replace("$mock$", "")
                statement = ("SELECT pg_temp.deliver($mock$%s$mock$::jsonb);\n"
                             "\\echo mock-delivered\n") % text
                with self.lock:
                    self.unconfirmed.append((statement, ended_at))
                try:
                    self.psql.stdin.write(statement)
                    self.psql.stdin.flush()
                except OSError:
                    self.start_psql()
            with self.lock:
                provider.in_progress -= 1
                provider.counts["results"] += 1
            if self.psql_command and self.psql.poll() is not None:
                self.start_psql()

    def stats(self):
        with self.lock:
            return {api: dict(p.counts, in_progress=p.in_progress, max_in_progress=p.max_in_progress,
                              limit=p.limit, name=p.name) for api, p in self.providers.items()}

    def lags(self):
        """Average lateness of call ends and time from a call's end to its
        result recorded, in ms."""
        with self.lock:
            placed = sum(p.counts["placed"] for p in self.providers.values()) or 1
            return {"timer_ms": self.lag["timer_ms"] / placed,
                    "delivery_ms": self.lag["delivery_ms"] / (self.lag["delivered"] or 1)}


def handler(mock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, headers, body):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/_stats":
                self.send(200, {}, mock.stats())
            elif self.path == "/_lags":
                self.send(200, {}, mock.lags())
            elif self.path == "/_requests":
                with mock.lock:
                    self.send(200, {}, mock.requests)
            else:
                self.send(404, {}, {"message": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == "/_control":
                order = json.loads(raw or b"{}")
                with mock.lock:
                    mock.answer_ms = order.get("answer_ms", mock.answer_ms)
                    mock.call_ms = order.get("call_ms", mock.call_ms)
                    if "provider" in order:
                        provider = mock.providers[order["provider"]]
                        provider.scripted += [(order["mode"], order.get("retry_after"))] * order.get("times", 1)
                self.send(200, {}, {"ok": True})
                return
            api = PATHS.get(self.path)
            if api is None or api not in mock.providers:
                self.send(404, {}, {"message": "Cannot POST " + self.path})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = mock.create(mock.providers[api], headers, raw)
            if status == "hang":
                time.sleep(3600)
                return
            if status == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send(status, extra, body)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--provider", action="append", default=[], help="NAME:API:KEY:LIMIT")
    parser.add_argument("--answer-ms", type=int, default=20)
    parser.add_argument("--call-ms", type=int, default=200)
    parser.add_argument("--psql", help="a psql command line that reaches the database")
    args = parser.parse_args()
    # Many threads wait on sockets and timers: hand the interpreter lock on
    # sooner than every 5 ms, so that no answer or result waits on it long.
    sys.setswitchinterval(0.0005)
    # It keeps every request it got (/_requests): without the cycle
    # collector's passes over them, no answer waits on one.
    gc.disable()
    mock = Mock(args)
    ThreadingHTTPServer.request_queue_size = 256  # connections waiting to be accepted
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(mock))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
