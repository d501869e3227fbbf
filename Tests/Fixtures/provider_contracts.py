"""Stand-ins for the eight HTTP alert providers, for the tests: one server on 127.0.0.1 that
answers each provider's documented request contract (shared/REFERENCE.md, "Alert channel
contracts") and records every departure from it as a violation.

Start: `python provider_contracts.py`. Prints `listening <port>` first, then one JSON line per
provider request (the same record `GET /_requests` returns). SIGTERM or SIGINT stops it at once.

Environment (defaults in CONFIG_DEFAULTS): WEBHOOK_SECRET (whsec_...), TWILIO_ACCOUNT_SID,
TWILIO_AUTH_TOKEN, PAGERDUTY_ROUTING_KEY (32 chars), OPSGENIE_API_KEY, TELEGRAM_BOT_TOKEN,
SLACK_PATH, DISCORD_PATH, TEAMS_PATH, TEAMS_SIG, WEBHOOK_PATH.

Provider endpoints (POST only):
  twilio     /2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json     form, HTTP Basic SID:token
  slack      {SLACK_PATH}                                                JSON {text, blocks?}
  discord    {DISCORD_PATH}?wait=true                                    JSON {content?, embeds?}
  teams      {TEAMS_PATH}?...sig={TEAMS_SIG}                             JSON Adaptive Card message
  webhook    {WEBHOOK_PATH}                                              Standard Webhooks
  pagerduty  /v2/enqueue                                                 Events API v2
  opsgenie   /v2/alerts, /v2/alerts/{alias}/close?identifierType=alias   Authorization: GenieKey
  telegram   /bot{TELEGRAM_BOT_TOKEN}/sendMessage                        JSON {chat_id, text}

Control API (never a violation):
  POST /_control  {"provider": P, "fail": [answer, ...]?, "delay": seconds?}
                  fail replaces P's script: one scripted answer is used per *valid* request,
                  each {"status": 429, "retry_after": N} | {"status": 5xx} |
                  {"status": 4xx, "message": "..."}, optionally "code", "body", "headers".
                  delay (seconds, 0 clears) is slept before answering every request of P.
  GET  /_requests[?provider=P]   every request received (scripted failures and violations too):
                  {"provider", "method", "path", "query" {name: value}, "headers" (lower-case
                  names), "body" (JSON value | form {name: value} | text), "answer" (status),
                  "time" (unix seconds received), "violations" [...], "scripted"?, "delay"?}
                  Paths of no provider are recorded as provider "unknown".
  GET  /_violations              ["<provider>: <what was wrong>", ...]
  GET  /_state                   Opsgenie alerts by alias and PagerDuty incidents by dedup_key
  POST /_reset                   clears requests, violations, scripts, delays and state
"""
import base64
import binascii
import json
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from standardwebhooks.webhooks import Webhook

CONFIG_DEFAULTS = {
    "WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"mingus-provider-contracts-secret").decode(),
    "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
    "TWILIO_AUTH_TOKEN": "twilio-test-auth-token",
    "PAGERDUTY_ROUTING_KEY": "R0ut1ngKey0123456789abcdefABCDEF",
    "OPSGENIE_API_KEY": "opsgenie-test-api-key",
    "TELEGRAM_BOT_TOKEN": "123456:ABC-def",
    "SLACK_PATH": "/services/T000/B000/XXXX",
    "DISCORD_PATH": "/api/webhooks/123/tok",
    "TEAMS_PATH": "/workflows/abc/triggers/manual/paths/invoke",
    "TEAMS_SIG": "test-sig",
    "WEBHOOK_PATH": "/hooks/mingus",
}
CONFIG = {name: os.environ.get(name) or default for name, default in CONFIG_DEFAULTS.items()}

PROVIDERS = ("twilio", "slack", "discord", "teams", "webhook", "pagerduty", "opsgenie", "telegram")

# The only fields each request may carry: the contract the Swift client is written against
# (for PagerDuty, also the Events API v2's documented optional fields). Anything else is a
# violation; widen a set here if the contract grows.
ALLOWED_FIELDS = {
    "twilio": {"To", "From", "MessagingServiceSid", "Body"},
    "slack": {"text", "blocks"},
    "discord": {"content", "embeds"},
    "teams": {"type", "attachments"},
    "teams.attachment": {"contentType", "content", "contentUrl"},
    "teams.card": {"type", "version", "body", "$schema", "contentUrl"},
    "webhook": {"type", "timestamp", "data"},
    "pagerduty": {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"},
    "pagerduty.payload": {"summary", "source", "severity", "timestamp", "component", "group", "class",
                          "custom_details"},
    "opsgenie.create": {"message", "alias", "description", "priority", "tags", "details", "source"},
    "opsgenie.close": {"source", "note", "user"},
    "telegram": {"chat_id", "text"},
}

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TEAMS_MAX_BYTES = 28 * 1024
PAGERDUTY_MAX_BYTES = 512 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
TWILIO_MORE_INFO = "https://www.twilio.com/docs/errors/"


def config_problems():
    problems = []
    for name in ("SLACK_PATH", "DISCORD_PATH", "TEAMS_PATH", "WEBHOOK_PATH"):
        if not CONFIG[name].startswith("/") or "?" in CONFIG[name]:
            problems.append(f"{name} must be a path starting with / and without a query")
    if len(CONFIG["PAGERDUTY_ROUTING_KEY"]) != 32:
        problems.append("PAGERDUTY_ROUTING_KEY must be 32 characters")
    if "/" in CONFIG["TELEGRAM_BOT_TOKEN"]:
        problems.append("TELEGRAM_BOT_TOKEN must not contain /")
    try:
        Webhook(CONFIG["WEBHOOK_SECRET"])
    except Exception as error:  # noqa: BLE001 - reported at start-up
        problems.append(f"WEBHOOK_SECRET is not a whsec_ secret: {error!r}")
    return problems


# ---------------------------------------------------------------- shared state

class State:
    """Everything the control API shows or changes; one lock guards it all."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = []
        self.violations = []
        self.scripts = {}
        self.delays = {}
        self.opsgenie_alerts = {}
        self.pagerduty_incidents = {}
        self.telegram_message_id = 0
        self.discord_sequence = 0


STATE = State()
PRINT_LOCK = threading.Lock()


def emit(record):
    line = json.dumps(record, default=str, ensure_ascii=False)
    with PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- requests and answers

class Request:
    def __init__(self, method, target, headers, body):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.raw_query = parts.query
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.json_error = None
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
            self.is_json = bool(body)
        except (UnicodeDecodeError, ValueError) as error:
            self.json, self.is_json, self.json_error = None, False, str(error)

    def media_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def query_value(self, name):
        values = self.query.get(name)
        return values[0] if values and len(values) == 1 else (values if values else None)

    def form(self):
        """The form fields name -> [values], or an error text."""
        try:
            return parse_qs(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(self.body),
                            errors="strict"), None
        except (UnicodeDecodeError, ValueError) as error:
            return None, str(error)

    def recorded_body(self):
        if self.is_json:
            return self.json
        if self.media_type() == "application/x-www-form-urlencoded":
            fields, _ = self.form()
            if fields is not None:
                return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
        return self.body.decode("utf-8", errors="replace")

    def recorded_query(self):
        return {name: values[0] if len(values) == 1 else values for name, values in self.query.items()}


class Answer:
    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type


def json_answer(status, value, headers=None):
    return Answer(status, json.dumps(value).encode(), "application/json; charset=utf-8", headers)


def text_answer(status, text, headers=None):
    return Answer(status, text.encode(), "text/plain; charset=utf-8", headers)


def empty_answer(status, headers=None):
    return Answer(status, b"", None, headers)


def request_id():
    return str(uuid.uuid4())


def retry_after_header(entry):
    """`Retry-After` (delay-seconds, an integer) when the script gave retry_after, else none."""
    if entry.get("retry_after") is None:
        return {}
    return {"Retry-After": str(math.ceil(float(entry["retry_after"])))}


def override(entry):
    """A script entry with its own "body" (text, or any JSON value) and "headers"."""
    if "body" not in entry:
        return None
    body = entry["body"]
    if isinstance(body, str):
        return text_answer(entry["status"], body, entry.get("headers"))
    return json_answer(entry["status"], body, entry.get("headers"))


# ---------------------------------------------------------------- checks

class Problems:
    """Failed checks of one request: (kind, text). The kind chooses the error answer:
    route (404), method (405), auth (401), size (413), invalid (the provider's 400/422)."""

    def __init__(self):
        self.items = []

    def add(self, kind, text):
        self.items.append((kind, text))

    def __bool__(self):
        return bool(self.items)

    def kind(self):
        for kind in ("route", "method", "auth", "size", "invalid"):
            if any(item[0] == kind for item in self.items):
                return kind
        return None

    def texts(self):
        return [text for _, text in self.items]


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_fields(value, allowed, where, problems):
    for name in value:
        if name not in allowed:
            problems.add("invalid", f"unexpected field {where}{name!r}")


def check_string(value, where, problems, *, minimum=1, maximum=None, blank_ok=False):
    """A string of minimum..maximum characters; not only whitespace unless blank_ok."""
    if value is None:
        problems.add("invalid", f"missing {where}")
        return False
    if not isinstance(value, str):
        problems.add("invalid", f"{where} must be a string, got {type(value).__name__}")
        return False
    if len(value) < minimum or (minimum > 0 and not blank_ok and not value.strip()):
        problems.add("invalid", f"{where} must not be empty")
        return False
    if maximum is not None and len(value) > maximum:
        problems.add("invalid", f"{where} is {len(value)} characters, more than {maximum}")
        return False
    return True


def json_object(request, problems, what="body"):
    """The body as a JSON object sent as application/json, else None (and problems)."""
    if request.media_type() != "application/json":
        problems.add("invalid", f"Content-Type is {request.headers.get('content-type')!r}, not application/json")
    if not request.is_json:
        problems.add("invalid", f"{what} is not JSON ({request.json_error or 'empty'})")
        return None
    if not isinstance(request.json, dict):
        problems.add("invalid", f"{what} is a JSON {type(request.json).__name__}, not an object")
        return None
    return request.json


# ---------------------------------------------------------------- providers

class Provider:
    name = ""

    def validate(self, request, problems):
        raise NotImplementedError

    def success(self, request):
        raise NotImplementedError

    def error(self, request, problems):
        raise NotImplementedError

    def scripted(self, request, entry):
        raise NotImplementedError


class Twilio(Provider):
    name = "twilio"
    route = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")

    def validate(self, request, problems):
        match = self.route.match(request.path)
        if match is None:
            problems.add("route", f"no such resource {request.path}")
            return
        sid, token = CONFIG["TWILIO_ACCOUNT_SID"], CONFIG["TWILIO_AUTH_TOKEN"]
        if match.group(1) != sid:
            problems.add("auth", f"account {match.group(1)!r} in the path is not {sid!r}")
        authorization = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
        if authorization != expected:
            problems.add("auth", "missing or wrong HTTP Basic credentials (expected AccountSid:AuthToken)"
                         if authorization else "no Authorization header")
        if request.media_type() != "application/x-www-form-urlencoded":
            problems.add("invalid", f"Content-Type is {request.headers.get('content-type')!r}, "
                                    "not application/x-www-form-urlencoded")
        fields, error = request.form()
        if fields is None:
            problems.add("invalid", f"body is not a valid UTF-8 form: {error}")
            return
        for name, values in fields.items():
            if name not in ALLOWED_FIELDS["twilio"]:
                problems.add("invalid", f"unexpected form field {name!r}")
            elif len(values) != 1:
                problems.add("invalid", f"form field {name!r} given {len(values)} times")
        field = {name: values[0] for name, values in fields.items()}
        if "To" not in field:
            problems.add("invalid", "missing To (code 21604)")
        elif not E164.match(field["To"]):
            problems.add("invalid", f"To {field['To']!r} is not E.164 (code 21211)")
        if "From" not in field and "MessagingServiceSid" not in field:
            problems.add("invalid", "neither From nor MessagingServiceSid (code 21603)")
        if "From" in field and not E164.match(field["From"]):
            problems.add("invalid", f"From {field['From']!r} is not E.164 (code 21212)")
        if "MessagingServiceSid" in field and not MESSAGING_SERVICE_SID.match(field["MessagingServiceSid"]):
            problems.add("invalid", f"MessagingServiceSid {field['MessagingServiceSid']!r} is not MG + 32 hex")
        if "Body" not in field or not field["Body"]:
            problems.add("invalid", "missing or empty Body (code 21602)")
        elif len(field["Body"]) > 1600:
            problems.add("invalid", f"Body is {len(field['Body'])} characters, more than 1600 (code 21617)")

    @staticmethod
    def failure(status, code, message):
        return json_answer(status, {"code": code, "message": message, "more_info": f"{TWILIO_MORE_INFO}{code}",
                                    "status": status})

    def success(self, request):
        fields, _ = request.form()
        field = {name: values[0] for name, values in fields.items()}
        sid = "SM" + uuid.uuid4().hex
        account = CONFIG["TWILIO_ACCOUNT_SID"]
        now = formatdate(usegmt=False).replace("-0000", "+0000")
        body = field.get("Body", "")
        return json_answer(201, {
            "account_sid": account, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": field.get("From"),
            "messaging_service_sid": field.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": str(max(1, math.ceil(len(body) / 153))), "price": None, "price_unit": "USD",
            "sid": sid, "status": "queued", "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
            "to": field.get("To"), "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"})

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return self.failure(404, 20404, f"The requested resource {request.path} was not found")
        if kind == "method":
            return self.failure(405, 20004, "Method not allowed")
        if kind == "auth":
            return self.failure(401, 20003, "Authenticate")
        text = problems.texts()[0]
        code = int(re.search(r"\(code (\d+)\)", text).group(1)) if "(code " in text else 21211
        return self.failure(400, code, text)

    def scripted(self, request, entry):
        status = entry["status"]
        if status == 429:
            return json_answer(429, {"code": 20429, "message": "Too Many Requests",
                                     "more_info": f"{TWILIO_MORE_INFO}20429", "status": 429})
        if status >= 500:
            return self.failure(status, entry.get("code", 20500 if status == 500 else 20503),
                                entry.get("message", "Service Unavailable" if status == 503 else "Internal Server Error"))
        defaults = {400: (21211, "Invalid 'To' Phone Number"), 401: (20003, "Authenticate"),
                    403: (20403, "Forbidden"), 404: (20404, "The requested resource was not found")}
        code, message = defaults.get(status, (21211, "Bad Request"))
        return self.failure(status, entry.get("code", code), entry.get("message", message))


class Slack(Provider):
    name = "slack"

    def validate(self, request, problems):
        if request.path != CONFIG["SLACK_PATH"]:
            problems.add("route", f"no incoming webhook at {request.path}")
            return
        body = json_object(request, problems)
        if body is None:
            return
        check_fields(body, ALLOWED_FIELDS["slack"], "", problems)
        if "text" not in body:
            problems.add("invalid", "missing text (required, also as the fallback for blocks)")
        else:
            check_string(body["text"], "text", problems)
        if "blocks" in body:
            blocks = body["blocks"]
            if not isinstance(blocks, list):
                problems.add("invalid", "blocks must be a list")
            else:
                if len(blocks) > 50:
                    problems.add("invalid", f"{len(blocks)} blocks, more than 50")
                for index, block in enumerate(blocks):
                    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                        problems.add("invalid", f"blocks[{index}] is not an object with a string type")

    def success(self, request):
        return text_answer(200, "ok")

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return text_answer(404, "no_service")
        if kind == "method":
            return text_answer(405, "invalid_method")
        return text_answer(400, "invalid_payload")

    def scripted(self, request, entry):
        status = entry["status"]
        if status == 429:
            return text_answer(429, entry.get("message", "rate_limited"), retry_after_header(entry))
        defaults = {400: "invalid_payload", 403: "invalid_token", 404: "channel_not_found",
                    410: "channel_is_archived", 500: "internal_error", 503: "service_unavailable"}
        return text_answer(status, entry.get("message", defaults.get(status, "error")), retry_after_header(entry))


class Discord(Provider):
    name = "discord"

    def validate(self, request, problems):
        if request.path != CONFIG["DISCORD_PATH"]:
            problems.add("route", f"no webhook at {request.path}")
            return
        if request.query_value("wait") != "true":
            problems.add("invalid", f"query must have wait=true (got {request.raw_query!r})")
        for name in request.query:
            if name not in ("wait", "thread_id"):
                problems.add("invalid", f"unexpected query parameter {name!r}")
        body = json_object(request, problems)
        if body is None:
            return
        check_fields(body, ALLOWED_FIELDS["discord"], "", problems)
        has_content = False
        if "content" in body:
            content = body["content"]
            if not isinstance(content, str):
                problems.add("invalid", "content must be a string")
            else:
                has_content = bool(content.strip())
                if len(content) > 2000:
                    problems.add("invalid", f"content is {len(content)} characters, more than 2000")
        has_embeds = False
        if "embeds" in body:
            embeds = body["embeds"]
            if not isinstance(embeds, list):
                problems.add("invalid", "embeds must be a list")
            elif len(embeds) > 10:
                problems.add("invalid", f"{len(embeds)} embeds, more than 10")
            else:
                has_embeds = bool(embeds)
                self.check_embeds(embeds, problems)
        if not has_content and not has_embeds:
            problems.add("invalid", "neither non-empty content nor embeds (Cannot send an empty message)")

    @staticmethod
    def check_embeds(embeds, problems):
        """Discord's documented embed limits: title 256, description 4096, 25 fields (name 256,
        value 1024), footer 2048, author 256, 6000 characters in all the embeds together."""
        total = 0
        limits = {"title": 256, "description": 4096}
        for index, embed in enumerate(embeds):
            where = f"embeds[{index}]"
            if not isinstance(embed, dict):
                problems.add("invalid", f"{where} is not an object")
                continue
            for name, limit in limits.items():
                if name in embed and check_string(embed[name], f"{where}.{name}", problems, maximum=limit):
                    total += len(embed[name])
            for name, key, limit in (("footer", "text", 2048), ("author", "name", 256)):
                if name in embed:
                    part = embed[name]
                    if not isinstance(part, dict) or not check_string(part.get(key), f"{where}.{name}.{key}",
                                                                      problems, maximum=limit):
                        continue
                    total += len(part[key])
            if "fields" in embed:
                fields = embed["fields"]
                if not isinstance(fields, list) or len(fields) > 25:
                    problems.add("invalid", f"{where}.fields must be a list of at most 25")
                    continue
                for number, field in enumerate(fields):
                    if not isinstance(field, dict):
                        problems.add("invalid", f"{where}.fields[{number}] is not an object")
                        continue
                    if check_string(field.get("name"), f"{where}.fields[{number}].name", problems, maximum=256):
                        total += len(field["name"])
                    if check_string(field.get("value"), f"{where}.fields[{number}].value", problems, maximum=1024):
                        total += len(field["value"])
            if "color" in embed and not (is_int(embed["color"]) and 0 <= embed["color"] <= 0xFFFFFF):
                problems.add("invalid", f"{where}.color must be an integer 0..0xFFFFFF")
        if total > 6000:
            problems.add("invalid", f"embeds hold {total} characters, more than 6000")

    def success(self, request):
        with STATE.lock:
            STATE.discord_sequence += 1
            sequence = STATE.discord_sequence
        snowflake = str(((int(time.time() * 1000) - 1420070400000) << 22) | (sequence & 0xFFF))
        webhook_id = CONFIG["DISCORD_PATH"].rstrip("/").split("/")[-2]
        body = request.json
        return json_answer(200, {
            "id": snowflake, "type": 0, "content": body.get("content", ""), "channel_id": "1000000000000000001",
            "author": {"id": webhook_id, "username": "Mingus Alerts", "bot": True, "discriminator": "0000"},
            "attachments": [], "embeds": body.get("embeds", []), "mentions": [], "mention_roles": [],
            "pinned": False, "mention_everyone": False, "tts": False,
            "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None, "flags": 0,
            "components": [], "webhook_id": webhook_id})

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return json_answer(404, {"message": "Unknown Webhook", "code": 10015})
        if kind == "method":
            return json_answer(405, {"message": "405: Method Not Allowed", "code": 0})
        if any("empty message" in text for text in problems.texts()):
            return json_answer(400, {"code": 50006, "message": "Cannot send an empty message"})
        return json_answer(400, {"code": 50035, "message": "Invalid Form Body",
                                 "errors": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": text}
                                                        for text in problems.texts()]}})

    def scripted(self, request, entry):
        status = entry["status"]
        if status == 429:
            seconds = float(entry["retry_after"]) if entry.get("retry_after") is not None else 1.0
            return json_answer(429, {"message": "You are being rate limited.", "retry_after": seconds, "global": False},
                               {"Retry-After": str(math.ceil(seconds)), "X-RateLimit-Limit": "5",
                                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(seconds),
                                "X-RateLimit-Scope": "shared"})
        if status >= 500:
            return json_answer(status, {"message": entry.get("message", f"{status}: Internal Server Error"), "code": 0})
        defaults = {400: (50035, "Invalid Form Body"), 401: (50027, "Invalid Webhook Token"),
                    403: (50013, "Missing Permissions"), 404: (10015, "Unknown Webhook")}
        code, message = defaults.get(status, (0, "Bad Request"))
        return json_answer(status, {"message": entry.get("message", message), "code": entry.get("code", code)})


class Teams(Provider):
    name = "teams"

    @staticmethod
    def failure(status, code, message, headers=None):
        return json_answer(status, {"error": {"code": code, "message": message}}, headers)

    def validate(self, request, problems):
        if request.path != CONFIG["TEAMS_PATH"]:
            problems.add("route", f"no workflow trigger at {request.path}")
            return
        if request.query_value("sig") != CONFIG["TEAMS_SIG"]:
            problems.add("auth", "missing or wrong sig in the query")
        if len(request.body) > TEAMS_MAX_BYTES:
            problems.add("size", f"body is {len(request.body)} bytes, more than {TEAMS_MAX_BYTES}")
        body = json_object(request, problems)
        if body is None:
            return
        check_fields(body, ALLOWED_FIELDS["teams"], "", problems)
        if body.get("type") != "message":
            problems.add("invalid", f"type must be \"message\", got {body.get('type')!r}")
        attachments = body.get("attachments")
        if not isinstance(attachments, list) or len(attachments) != 1:
            problems.add("invalid", "attachments must be a list of exactly one card")
            return
        attachment = attachments[0]
        if not isinstance(attachment, dict):
            problems.add("invalid", "attachments[0] is not an object")
            return
        check_fields(attachment, ALLOWED_FIELDS["teams.attachment"], "attachments[0].", problems)
        if attachment.get("contentType") != ADAPTIVE_CARD:
            problems.add("invalid", f"attachments[0].contentType must be {ADAPTIVE_CARD}")
        if attachment.get("contentUrl") is not None:
            problems.add("invalid", "attachments[0].contentUrl must be null or absent")
        card = attachment.get("content")
        if not isinstance(card, dict):
            problems.add("invalid", "attachments[0].content must be an Adaptive Card object")
            return
        check_fields(card, ALLOWED_FIELDS["teams.card"], "attachments[0].content.", problems)
        if card.get("type") != "AdaptiveCard":
            problems.add("invalid", f"card type must be \"AdaptiveCard\", got {card.get('type')!r}")
        if not isinstance(card.get("version"), str) or not re.match(r"^1\.\d+$", card["version"]):
            problems.add("invalid", f"card version must be \"1.x\", got {card.get('version')!r}")
        if card.get("contentUrl") is not None:
            problems.add("invalid", "attachments[0].content.contentUrl must be null or absent")
        if "$schema" in card and not isinstance(card["$schema"], str):
            problems.add("invalid", "card $schema must be a string")
        elements = card.get("body")
        if not isinstance(elements, list) or not elements:
            problems.add("invalid", "card body must be a non-empty list")
            return
        for index, element in enumerate(elements):
            if not isinstance(element, dict) or not isinstance(element.get("type"), str):
                problems.add("invalid", f"card body[{index}] is not an element with a string type")

    def success(self, request):
        return empty_answer(202)

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return self.failure(404, "WorkflowNotFound", "The workflow could not be found.")
        if kind == "method":
            return self.failure(405, "MethodNotAllowed", "Only POST is allowed.")
        if kind == "auth":
            return self.failure(401, "DirectApiInvalidAuthorizationSignature",
                                "The provided authorization signature is invalid.")
        if kind == "size":
            return self.failure(413, "MessageSizeExceeded", "The message is larger than 28 KB.")
        return self.failure(400, "InvalidRequestContent", "; ".join(problems.texts()))

    def scripted(self, request, entry):
        status = entry["status"]
        defaults = {429: ("WorkflowTriggerIsThrottled", "Rate limit is exceeded."),
                    404: ("WorkflowNotFound", "The workflow could not be found."),
                    401: ("DirectApiInvalidAuthorizationSignature", "The provided authorization signature is invalid."),
                    400: ("InvalidRequestContent", "The request content is not valid.")}
        code, message = defaults.get(status, ("ServiceUnavailable", "The service is temporarily unavailable.")
                                     if status >= 500 else ("BadRequest", "The request failed."))
        return self.failure(status, entry.get("code", code), entry.get("message", message), retry_after_header(entry))


class GenericWebhook(Provider):
    name = "webhook"

    def __init__(self):
        self.verifier = Webhook(CONFIG["WEBHOOK_SECRET"])

    def validate(self, request, problems):
        if request.path != CONFIG["WEBHOOK_PATH"]:
            problems.add("route", f"no endpoint at {request.path}")
            return
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            if not request.headers.get(name):
                problems.add("auth", f"missing header {name}")
        timestamp = request.headers.get("webhook-timestamp", "")
        if timestamp and not timestamp.isdigit():
            problems.add("auth", f"webhook-timestamp {timestamp!r} is not integer unix seconds")
        try:
            self.verifier.verify(request.body, request.headers, json_parse=False)
        except Exception as error:  # noqa: BLE001 - any failure is a violation
            problems.add("auth", f"signature not verified by standardwebhooks: {error!r}")
        body = json_object(request, problems, "payload")
        if body is None:
            return
        check_fields(body, ALLOWED_FIELDS["webhook"], "", problems)
        check_string(body.get("type"), "type", problems)
        if check_string(body.get("timestamp"), "timestamp", problems):
            try:
                datetime.fromisoformat(body["timestamp"])
            except ValueError:
                problems.add("invalid", f"timestamp {body['timestamp']!r} is not ISO 8601")
        if not isinstance(body.get("data"), dict):
            problems.add("invalid", "data must be an object")

    def success(self, request):
        return empty_answer(204)

    def error(self, request, problems):
        status = {"route": 404, "method": 405, "auth": 401}.get(problems.kind(), 400)
        return text_answer(status, "; ".join(problems.texts()))

    def scripted(self, request, entry):
        return text_answer(entry["status"], entry.get("message", ""), retry_after_header(entry))


class PagerDuty(Provider):
    name = "pagerduty"

    def validate(self, request, problems):
        if request.path != "/v2/enqueue":
            problems.add("route", f"no such endpoint {request.path}")
            return
        if len(request.body) > PAGERDUTY_MAX_BYTES:
            problems.add("invalid", f"event is {len(request.body)} bytes, more than 512 KB")
        event = json_object(request, problems, "event")
        if event is None:
            return
        check_fields(event, ALLOWED_FIELDS["pagerduty"], "", problems)
        if event.get("routing_key") != CONFIG["PAGERDUTY_ROUTING_KEY"]:
            key = event.get("routing_key")
            problems.add("invalid", "missing routing_key" if key is None else
                         f"routing_key is not the integration's 32-character key ({len(str(key))} characters)")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            problems.add("invalid", f"event_action must be trigger, acknowledge or resolve, got {action!r}")
        if "dedup_key" in event:
            check_string(event["dedup_key"], "dedup_key", problems, maximum=255)
        elif action in ("acknowledge", "resolve"):
            problems.add("invalid", f"dedup_key is required to {action}")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                problems.add("invalid", "trigger needs a payload object")
                return
            check_fields(payload, ALLOWED_FIELDS["pagerduty.payload"], "payload.", problems)
            check_string(payload.get("summary"), "payload.summary", problems, maximum=1024)
            check_string(payload.get("source"), "payload.source", problems)
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                problems.add("invalid", f"payload.severity must be critical, error, warning or info, "
                                        f"got {payload.get('severity')!r}")
            for name in ("component", "group", "class"):
                if name in payload:
                    check_string(payload[name], f"payload.{name}", problems)
            if "timestamp" in payload and check_string(payload["timestamp"], "payload.timestamp", problems):
                try:
                    datetime.fromisoformat(payload["timestamp"])
                except ValueError:
                    problems.add("invalid", f"payload.timestamp {payload['timestamp']!r} is not ISO 8601")
            if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
                problems.add("invalid", "payload.custom_details must be an object")
        elif action is not None and "payload" in event:
            problems.add("invalid", f"payload is not part of an {action} event")
        for name in ("client", "client_url"):
            if name in event:
                check_string(event[name], name, problems)
        for name, required in (("links", "href"), ("images", "src")):
            if name in event and not (isinstance(event[name], list) and all(
                    isinstance(item, dict) and isinstance(item.get(required), str) for item in event[name])):
                problems.add("invalid", f"{name} must be a list of objects with a string {required}")

    def success(self, request):
        event = request.json
        key = event.get("dedup_key") or uuid.uuid4().hex
        status = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[event["event_action"]]
        with STATE.lock:
            incident = STATE.pagerduty_incidents.setdefault(key, {"status": None, "history": []})
            incident["status"] = status
            incident["history"].append(event["event_action"])
            if event["event_action"] == "trigger":
                incident["summary"] = event["payload"]["summary"]
                incident["severity"] = event["payload"]["severity"]
        return json_answer(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return json_answer(404, {"status": "error", "message": "Not Found"})
        if kind == "method":
            return json_answer(405, {"status": "error", "message": "Method Not Allowed"})
        return json_answer(400, {"status": "invalid event", "message": "Event object is invalid",
                                 "errors": problems.texts()})

    def scripted(self, request, entry):
        status = entry["status"]
        if status == 429:
            return json_answer(429, {"status": "throttle event", "message": entry.get(
                "message", "Requests for this service are arriving too quickly.  Please retry later.")},
                retry_after_header(entry))
        if status == 400:
            message = entry.get("message", "Event object is invalid")
            return json_answer(400, {"status": "invalid event", "message": "Event object is invalid",
                                     "errors": [message]}, retry_after_header(entry))
        return json_answer(status, {"status": "error", "message": entry.get("message", "Internal Server Error"
                                                                            if status >= 500 else "Error")},
                           retry_after_header(entry))


class Opsgenie(Provider):
    name = "opsgenie"
    close_route = re.compile(r"^/v2/alerts/([^/]+)/close$")

    @staticmethod
    def failure(status, message, headers=None):
        return json_answer(status, {"message": message, "took": 0.0, "requestId": request_id()}, headers)

    def validate(self, request, problems):
        close = self.close_route.match(request.path)
        if request.path != "/v2/alerts" and close is None:
            problems.add("route", f"no such endpoint {request.path}")
            return
        if request.headers.get("authorization") != f"GenieKey {CONFIG['OPSGENIE_API_KEY']}":
            problems.add("auth", "missing or wrong Authorization: GenieKey <key>")
        if close is not None:
            alias = unquote(close.group(1))
            check_string(alias, "alias in the path", problems, maximum=512)
            if request.query_value("identifierType") != "alias":
                problems.add("invalid", f"close needs identifierType=alias in the query (got {request.raw_query!r})")
            for name in request.query:
                if name != "identifierType":
                    problems.add("invalid", f"unexpected query parameter {name!r}")
            body = json_object(request, problems, "close body")
            if body is None:
                return
            check_fields(body, ALLOWED_FIELDS["opsgenie.close"], "", problems)
            for name, limit in (("source", 100), ("user", 100), ("note", 25000)):
                if name in body:
                    check_string(body[name], name, problems, maximum=limit)
            return
        if request.raw_query:
            problems.add("invalid", f"unexpected query {request.raw_query!r}")
        alert = json_object(request, problems, "alert")
        if alert is None:
            return
        check_fields(alert, ALLOWED_FIELDS["opsgenie.create"], "", problems)
        check_string(alert.get("message"), "message", problems, maximum=130)
        if "alias" in alert:
            check_string(alert["alias"], "alias", problems, maximum=512)
        if "description" in alert:
            check_string(alert["description"], "description", problems, minimum=0, maximum=15000)
        if "priority" in alert and alert["priority"] not in ("P1", "P2", "P3", "P4", "P5"):
            problems.add("invalid", f"priority must be P1..P5, got {alert['priority']!r}")
        if "source" in alert:
            check_string(alert["source"], "source", problems, maximum=100)
        if "tags" in alert:
            tags = alert["tags"]
            if not isinstance(tags, list) or len(tags) > 20:
                problems.add("invalid", "tags must be a list of at most 20 strings")
            else:
                for index, tag in enumerate(tags):
                    check_string(tag, f"tags[{index}]", problems, maximum=50)
        if "details" in alert:
            details = alert["details"]
            if not isinstance(details, dict):
                problems.add("invalid", "details must be an object of strings")
            else:
                for name, value in details.items():
                    if not isinstance(value, str):
                        problems.add("invalid", f"details[{name!r}] must be a string, got {type(value).__name__}")

    def success(self, request):
        now = time.time()
        close = self.close_route.match(request.path)
        with STATE.lock:
            if close is not None:
                alias = unquote(close.group(1))
                alert = STATE.opsgenie_alerts.setdefault(alias, {"status": None, "created": None, "count": 0,
                                                                 "history": []})
                alert.update(status="closed", closed=now)
                alert["history"].append("close")
            elif "alias" in request.json:
                alias = request.json["alias"]
                alert = STATE.opsgenie_alerts.get(alias)
                if alert is not None and alert["status"] == "open":
                    alert["count"] += 1
                else:
                    history = alert["history"] if alert else []
                    alert = STATE.opsgenie_alerts[alias] = {"status": "open", "created": now, "count": 1,
                                                            "history": history}
                alert.update(message=request.json["message"], priority=request.json.get("priority", "P3"))
                alert["history"].append("create")
        return json_answer(202, {"result": "Request will be processed", "took": 0.01, "requestId": request_id()})

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return self.failure(404, "Could not find the requested resource")
        if kind == "method":
            return self.failure(405, "Method not allowed")
        if kind == "auth":
            return self.failure(401, "Key format is not valid!" if not request.headers.get("authorization")
                                else "Could not authenticate")
        return self.failure(422, "; ".join(problems.texts()))

    def scripted(self, request, entry):
        status = entry["status"]
        defaults = {429: "You are making too many requests! To avoid errors, we recommend you limit requests.",
                    422: "Request body is not processable", 400: "Request body is not processable",
                    401: "Could not authenticate", 403: "You are not authorized for this action",
                    404: "Alert does not exist"}
        message = entry.get("message", defaults.get(status, "Internal Server Error" if status >= 500 else "Error"))
        return self.failure(status, message, retry_after_header(entry))


class Telegram(Provider):
    name = "telegram"
    route = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")

    @staticmethod
    def failure(status, description, parameters=None):
        body = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return json_answer(status, body)

    def validate(self, request, problems):
        match = self.route.match(request.path)
        if match is None or match.group(1) != CONFIG["TELEGRAM_BOT_TOKEN"]:
            problems.add("route", "wrong or missing bot token in the path")
            return
        if match.group(2) != "sendMessage":
            problems.add("route", f"method {match.group(2)!r} is not sendMessage")
            return
        body = json_object(request, problems)
        if body is None:
            return
        check_fields(body, ALLOWED_FIELDS["telegram"], "", problems)
        chat = body.get("chat_id")
        if not (is_int(chat) or (isinstance(chat, str) and chat.strip())):
            problems.add("invalid", f"chat_id must be an integer or a non-empty string, got {chat!r}")
        check_string(body.get("text"), "text", problems, maximum=4096)

    def success(self, request):
        with STATE.lock:
            STATE.telegram_message_id += 1
            message_id = STATE.telegram_message_id
        chat = request.json["chat_id"]
        bot_id = int(CONFIG["TELEGRAM_BOT_TOKEN"].split(":")[0]) if CONFIG["TELEGRAM_BOT_TOKEN"].split(":")[0].isdigit() \
            else 1
        return json_answer(200, {"ok": True, "result": {
            "message_id": message_id,
            "from": {"id": bot_id, "is_bot": True, "first_name": "Mingus Alerts", "username": "mingus_alerts_bot"},
            "chat": {"id": chat, "type": "private" if is_int(chat) and chat > 0 else "group"},
            "date": int(time.time()), "text": request.json["text"]}})

    def error(self, request, problems):
        kind = problems.kind()
        if kind == "route":
            return self.failure(404, "Not Found")
        if kind == "method":
            return self.failure(405, "Method Not Allowed")
        return self.failure(400, "Bad Request: " + "; ".join(problems.texts()))

    def scripted(self, request, entry):
        status = entry["status"]
        if status == 429:
            seconds = math.ceil(float(entry["retry_after"])) if entry.get("retry_after") is not None else 1
            return self.failure(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
        defaults = {400: "Bad Request: chat not found", 401: "Unauthorized",
                    403: "Forbidden: bot was blocked by the user", 404: "Not Found"}
        return self.failure(status, entry.get("message", defaults.get(
            status, "Internal Server Error" if status >= 500 else "Bad Request")))


HANDLERS = {provider.name: provider for provider in
            (Twilio(), Slack(), Discord(), Teams(), GenericWebhook(), PagerDuty(), Opsgenie(), Telegram())}


def provider_for(path):
    """Which provider a path belongs to: exact endpoints first, then the path's family (so a
    wrong token or id is charged to the right provider), else None."""
    exact = {CONFIG["SLACK_PATH"]: "slack", CONFIG["DISCORD_PATH"]: "discord", CONFIG["TEAMS_PATH"]: "teams",
             CONFIG["WEBHOOK_PATH"]: "webhook", "/v2/enqueue": "pagerduty", "/v2/alerts": "opsgenie"}
    if path in exact:
        return exact[path]
    if path.startswith("/2010-04-01/"):
        return "twilio"
    if path.startswith("/v2/alerts/"):
        return "opsgenie"
    if path.startswith("/bot"):
        return "telegram"
    for name, provider in (("SLACK_PATH", "slack"), ("DISCORD_PATH", "discord"), ("TEAMS_PATH", "teams"),
                           ("WEBHOOK_PATH", "webhook")):
        family = CONFIG[name].rsplit("/", 1)[0] + "/"
        if family != "/" and path.startswith(family):
            return provider
    return None


# ---------------------------------------------------------------- control API

def validate_script(provider, body):
    if provider not in PROVIDERS:
        return f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}"
    if "fail" in body:
        if not isinstance(body["fail"], list):
            return "fail must be a list"
        for entry in body["fail"]:
            if not isinstance(entry, dict) or not is_int(entry.get("status")) or not 400 <= entry["status"] <= 599:
                return f"each fail entry needs an integer status 400..599: {entry!r}"
            if entry.get("retry_after") is not None and (
                    not isinstance(entry["retry_after"], (int, float)) or entry["retry_after"] < 0):
                return f"retry_after must be a number of seconds: {entry!r}"
    if "delay" in body and (not isinstance(body["delay"], (int, float)) or body["delay"] < 0):
        return "delay must be a number of seconds >= 0"
    if "fail" not in body and "delay" not in body:
        return "give fail and/or delay"
    return None


def control(method, request):
    """(status, JSON value) for a control path, or None when the path is not one."""
    path = request.path
    if path == "/_control":
        if method != "POST":
            return 405, {"error": "POST /_control"}
        body = request.json if request.is_json and isinstance(request.json, dict) else None
        if body is None:
            return 400, {"error": "body must be a JSON object"}
        problem = validate_script(body.get("provider"), body)
        if problem:
            return 400, {"error": problem}
        provider = body["provider"]
        with STATE.lock:
            if "fail" in body:
                STATE.scripts[provider] = list(body["fail"])
            if "delay" in body:
                if body["delay"]:
                    STATE.delays[provider] = float(body["delay"])
                else:
                    STATE.delays.pop(provider, None)
            return 200, {"provider": provider, "pending": len(STATE.scripts.get(provider, [])),
                         "delay": STATE.delays.get(provider, 0)}
    if path == "/_requests":
        if method != "GET":
            return 405, {"error": "GET /_requests"}
        wanted = request.query_value("provider")
        with STATE.lock:
            return 200, [dict(record) for record in STATE.requests if wanted is None or record["provider"] == wanted]
    if path == "/_violations":
        if method != "GET":
            return 405, {"error": "GET /_violations"}
        with STATE.lock:
            return 200, list(STATE.violations)
    if path == "/_state":
        if method != "GET":
            return 405, {"error": "GET /_state"}
        with STATE.lock:
            return 200, json.loads(json.dumps({"opsgenie": {"alerts": STATE.opsgenie_alerts},
                                               "pagerduty": {"incidents": STATE.pagerduty_incidents},
                                               "scripts": STATE.scripts, "delays": STATE.delays}))
    if path == "/_reset":
        if method != "POST":
            return 405, {"error": "POST /_reset"}
        with STATE.lock:
            STATE.reset()
        return 200, {"reset": True}
    return None


# ---------------------------------------------------------------- HTTP

class ContractServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-contracts/1"

    def do_POST(self):
        self.dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    def read_body(self):
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(length))
                self.rfile.readline(1024)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def dispatch(self):
        received = time.time()
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            body = self.read_body()
        except (ValueError, binascii.Error) as error:
            self.close_connection = True
            self.send(text_answer(400, f"unreadable body: {error}"))
            return
        request = Request(self.command, self.path, headers, body)
        controlled = control(self.command, request)
        if controlled is not None:
            self.send(json_answer(*controlled))
            return
        try:
            self.serve_provider(request, received)
        except Exception:  # noqa: BLE001 - a fixture bug must fail the test, loudly
            trace = traceback.format_exc()
            with STATE.lock:
                STATE.violations.append(f"fixture: error handling {self.command} {request.path}: {trace}")
            sys.stderr.write(trace)
            self.send(text_answer(500, "fixture error"))

    def serve_provider(self, request, received):
        name = provider_for(request.path) or "unknown"
        record = {"provider": name, "method": request.method, "path": request.path,
                  "query": request.recorded_query(), "headers": request.headers, "body": request.recorded_body(),
                  "answer": None, "time": received}
        with STATE.lock:
            STATE.requests.append(record)
            delay = STATE.delays.get(name, 0)
        problems = Problems()
        provider = HANDLERS.get(name)
        if provider is None:
            problems.add("route", f"{request.method} {request.path} is no provider's endpoint")
        elif request.method != "POST":
            problems.add("method", f"{request.method} {request.path}: only POST is allowed")
        else:
            provider.validate(request, problems)
        entry = None
        if problems:
            answer = provider.error(request, problems) if provider else text_answer(404, "not found")
        else:
            with STATE.lock:
                script = STATE.scripts.get(name)
                entry = script.pop(0) if script else None
            if entry is None:
                answer = provider.success(request)
            else:
                answer = override(entry) or provider.scripted(request, entry)
        texts = [f"{name}: {text}" for text in problems.texts()]
        with STATE.lock:
            STATE.violations.extend(texts)
            record["answer"] = answer.status
            record["violations"] = texts
            if entry is not None:
                record["scripted"] = entry
            if delay:
                record["delay"] = delay
        emit(record)
        if delay:
            time.sleep(delay)
        self.send(answer)

    def send(self, answer):
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout during a delay)

    def log_message(self, *args):
        pass


def stop(signum, frame):
    raise SystemExit(0)


def main():
    problems = config_problems()
    if problems:
        sys.stderr.write("provider_contracts: " + "; ".join(problems) + "\n")
        sys.exit(2)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), ContractServer)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
