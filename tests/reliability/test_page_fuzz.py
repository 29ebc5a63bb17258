"""Page fuzzing: every page URL pattern, its query parameters and its forms, as a rep and as a manager.

The API has its schemathesis fuzz (test_api_fuzz.py); this is the same idea for the HTML pages, which
have no schema. The small demo world (all capabilities: customers, pipeline, goals, health, daily
reports) gives real ids. For each role:

1. crawl: every URL pattern of the project (Django's resolver, the API excepted) is requested with real
   ids; from the HTML come the query parameters the page itself uses (GET forms, filter links) and its
   POST forms with their fields;
2. query fuzz: each (page, parameter) gets the marker and a seeded choice of extreme values
   (2**63, -1, 1e20, "", NUL, a lone surrogate percent-encoded, 9999-12-31, 100k characters, ...),
   sometimes as an htmx partial request;
3. form fuzz: each POST form is sent as found, with the marker in every text field, and mutated
   (seeded: each field takes an extreme value or keeps its own).

Every request runs in a savepoint that is rolled back, so each starts from the same world. Asserted:
no 5xx, and the marker `<x-fuzz>` never comes back unescaped in HTML. The plan is fixed by SEED; the
run stops at TIME_BUDGET seconds per role (and says so) so CI time stays bounded, while every URL
pattern is always requested.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tuijin.demo.generate import generate
from tuijin.org.models import User

# Fixed seed and time bound for CI; both can be raised for a longer exploratory run.
SEED = int(os.environ.get("TUIJIN_PAGE_FUZZ_SEED", "20261130"))
TIME_BUDGET = float(os.environ.get("TUIJIN_PAGE_FUZZ_SECONDS", "25"))  # per role; the crawl always completes
FROZEN_AT = dt.datetime(2026, 11, 18, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday mid-month
MARKER = "<x-fuzz>"
BIG = 2**63
EXTREMES = [
    str(BIG), str(BIG - 1), str(-BIG - 1), "-1", "0", "1e20", "100000000000000000000", "1.5", "NaN",
    "", " ", "\x00", "\ud800", "a\udfffb", "9999-12-31", "0001-01-01", "2026-02-30", "9" * 40,
    "x" * 100_000, "推进🚀\u202e\u0301", "١٢٣", "[]", "../../etc/passwd", MARKER,
]
PARAMS_PER_FIELD = 3  # extremes tried per (page, query parameter), besides the marker
MUTATIONS_PER_FORM = 3
TEXT_KINDS = {"text", "textarea", "search", "email", "url", "tel"}

# Not fuzzed here: signing in and out belongs to the auth pages (and logging out ends the session),
# the API has its own fuzz test, set_language only redirects.
SKIP_NAMES = {"login", "logout", "healthz"}
SKIP_PATHS = ("/api/", "/static/", "/login/", "/logout/")

# Real ids for the URL patterns' arguments: url name -> {kwarg: model}. Anything else gets id 1.
def _models():
    from tuijin.customers.models import Customer
    from tuijin.forecasting.models import CorrectionRequest, DailyReport, ForecastLine
    from tuijin.goals.models import GoalReport, KeyResult, Objective, Target
    from tuijin.health.models import Blocker
    from tuijin.integrations.excel.models import ImportJob
    from tuijin.notify.models import Notification, OutboxMessage, Robot
    from tuijin.pipeline.models import Opportunity

    return {
        "customer": Customer, "opportunity": Opportunity, "user": User, "job": ImportJob,
        "notification": Notification, "robot": Robot, "outbox": OutboxMessage, "objective": Objective,
        "key_result": KeyResult, "target": Target, "goal_report": GoalReport, "blocker": Blocker,
        "daily_report": DailyReport, "line": ForecastLine, "correction": CorrectionRequest,
    }


ID_SOURCES = {
    "excel:": "job", "notify:open": "notification", "notify:read": "notification", "notify:robot_": "robot",
    "notify:outbox_retry": "outbox", "goals:objective_detail": "objective", "goals:key_result_new": "objective",
    "goals:cascade": "key_result", "goals:allocate": "target", "goals:figure_records": "target",
    "goals:report": "goal_report", "goals:board": "user", "health:rep": "user",
    "health:blocker_resolve": "blocker", "health:grade_rule_edit": None, "forecasting:correction_": "correction",
    "forecasting:": "daily_report", "customer": "customer", "opportunity": "opportunity",
}

# Crawled, but too slow to fuzz within the time budget (a PDF takes over a second).
CRAWL_ONLY = {"goals:report_pdf"}

# 5xx the fuzzer may still report, as (url name, parameter); empty: every one it found is fixed.
KNOWN_OTHER_BRANCH: set[tuple[str, str]] = set()


# --------------------------------------------------------------------------- HTML reading

@dataclass
class Form:
    page: str
    method: str
    action: str
    fields: list = field(default_factory=list)  # [name, kind, default value, options]


class PageReader(HTMLParser):
    """Forms (with their fields) and same-site links with a query string."""

    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: list | None = None
        self._textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            action = urljoin(self.page_url, a.get("action") or self.page_url)
            self._form = Form(self.page_url, (a.get("method") or "get").lower(), action)
            self.forms.append(self._form)
        elif tag == "a" and "?" in a.get("href", ""):
            self.links.append(urljoin(self.page_url, a["href"]))
        if self._form is None or not a.get("name"):
            return
        if tag == "input" and a.get("type", "text") not in ("submit", "button", "image", "reset", "file"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                default = None
            else:
                default = a.get("value", "on" if kind == "checkbox" else "")
            self._form.fields.append([a["name"], kind, default, []])
        elif tag == "select":
            self._select = [a["name"], "select", None, []]
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select[3].append(value)
            if "selected" in a or self._select[2] is None:
                self._select[2] = value
        elif tag == "textarea":
            self._textarea = [a["name"], "textarea", "", []]
            self._form.fields.append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def encode(pairs) -> str:
    # surrogatepass: a lone surrogate goes out as its (invalid) UTF-8 bytes, %ED%A0%80, as a client could send.
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}" for k, v in pairs)


def short(value: str) -> str:
    return ascii(value if len(value) <= 40 else value[:20] + f"...({len(value)} chars)")


# --------------------------------------------------------------------------- the run

@dataclass
class Finding:
    what: str
    status: int
    detail: str


class Fuzzer:
    def __init__(self, client: Client, role: str, deadline: float):
        self.client = client
        self.role = role
        self.deadline = deadline
        self.findings: list[Finding] = []
        self.allowed: list[str] = []
        self.requests = 0
        self.stopped_early = False
        self.plan_size = self.patterns = 0
        self._exc: BaseException | None = None

    def _record_exception(self, **kwargs):
        self._exc = sys.exc_info()[1]

    def send(self, method: str, path: str, pairs, *, name: str, param: str = "", htmx: bool = False):
        body = encode(pairs)
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        self._exc = None
        sid = transaction.savepoint()
        try:
            if method == "get":
                url = f"{path}?{body}" if body else path
                resp = self.client.get(url, **headers)
            else:
                resp = self.client.post(path, body, content_type="application/x-www-form-urlencoded", **headers)
        finally:
            transaction.savepoint_rollback(sid)
        self.requests += 1
        values = dict(pairs)
        what = f"{self.role} {method.upper()} {path} " + " ".join(
            f"{p}={short(values.get(p, ''))}" for p in param.split(",") if p)
        if resp.status_code >= 500:
            detail = f"{type(self._exc).__name__}: {self._exc}"[:300] if self._exc else ""
            if any((name, p) in KNOWN_OTHER_BRANCH for p in param.split(",")):
                self.allowed.append(what)
            else:
                self.findings.append(Finding(what, resp.status_code, detail))
        elif "html" in resp.get("Content-Type", "") and MARKER.encode() in resp.content:
            self.findings.append(Finding(what, resp.status_code, "marker reflected unescaped"))
        return resp

    def out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.stopped_early = True
        return self.stopped_early


def url_patterns(patterns=None, prefix="", ns=""):
    """(name, route, converter names) of every page URL pattern."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            route = prefix + str(p.pattern)
            if route.startswith("api/"):
                continue
            yield from url_patterns(p.url_patterns, route, p.namespace or ns)
        elif isinstance(p, URLPattern):
            name = f"{ns}:{p.name}" if ns and p.name else (p.name or "")
            yield name, prefix + str(p.pattern), list(getattr(p.pattern, "converters", {}))


def real_id(name: str, kwarg: str, user) -> int:
    """The id of a record of the kind the pattern takes, preferably one the user can see."""
    from tuijin.org.selectors import visible_owner_ids

    models = _models()
    visible = visible_owner_ids(user)
    source = "user" if kwarg == "user_id" else next(
        (src for key, src in ID_SOURCES.items() if name.startswith(key)), None)
    if kwarg == "line_id":
        source = "line"
    model = models.get(source) if source else None
    if model is None:
        return 1
    qs = model.objects.order_by("pk")
    if model is User:
        others = qs.exclude(pk=user.pk).filter(pk__in=visible) if visible is not None else qs.exclude(pk=user.pk)
        return (others.first() or user).pk
    for owner_field in ("owner", "rep", "user", "recipient"):
        if any(f.name == owner_field for f in model._meta.get_fields()):
            mine = qs.filter(**{owner_field: user}).first()
            if mine is None and visible is not None:
                mine = qs.filter(**{f"{owner_field}__in": visible}).first()
            if mine is not None:
                return mine.pk
    first = qs.first()
    return first.pk if first else 1


def run(role_user, rng: random.Random, client: Client, deadline: float) -> Fuzzer:
    fz = Fuzzer(client, role_user.username, deadline)
    got_request_exception.connect(fz._record_exception)
    try:
        crawl_and_fuzz(fz, role_user, rng)
    finally:
        got_request_exception.disconnect(fz._record_exception)
    return fz


def crawl_and_fuzz(fz: Fuzzer, user, rng: random.Random):
    names = {}
    pages: dict[str, str] = {}  # path -> url name
    for name, _route, kwargs in url_patterns():
        if name in SKIP_NAMES or not name:
            continue
        args = {k: real_id(name, k, user) for k in kwargs}
        path = reverse(name, kwargs=args)
        pages[path] = name
        names[name] = path

    # 1. crawl: every pattern once, reading its forms and links.
    get_params: dict[str, dict[str, str]] = {}
    post_forms: list[Form] = []
    seen_forms = set()
    for path, name in pages.items():
        resp = fz.send("get", path, [], name=name)
        if resp.status_code != 200 or "html" not in resp.get("Content-Type", ""):
            continue
        reader = PageReader(path)
        reader.feed(resp.content.decode("utf-8", "replace"))
        for form in reader.forms:
            target = urlsplit(form.action).path
            if target.startswith(SKIP_PATHS):
                continue
            if form.method == "get":
                params = get_params.setdefault(target, {})
                for fname, _kind, default, options in form.fields:
                    params.setdefault(fname, default or (options[1] if len(options) > 1 else ""))
            else:
                key = (target, tuple(f[0] for f in form.fields))
                if key not in seen_forms:
                    seen_forms.add(key)
                    form.action = target
                    post_forms.append(form)
        for link in reader.links:
            parts = urlsplit(link)
            if parts.netloc not in ("", "testserver") or parts.path.startswith(SKIP_PATHS):
                continue
            params = get_params.setdefault(parts.path, {})
            for k, v in parse_qsl(parts.query, keep_blank_values=True):
                params.setdefault(k, v)

    def name_of(path):
        try:
            from django.urls import resolve

            match = resolve(path)
            return f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
        except Exception:
            return path

    # 2. query strings: the marker and a seeded choice of extremes for each parameter of each page.
    plan = []
    for path, name in pages.items():
        if not get_params.get(path) and name not in CRAWL_ONLY:  # no parameters of its own: try a page number
            plan.append(("get", path, [("page", rng.choice(EXTREMES))], "page", False))
    for path in sorted(get_params):
        params = get_params[path]
        if pages.get(path) in CRAWL_ONLY:
            continue
        for param in sorted(params):
            values = [MARKER, *rng.sample(EXTREMES, PARAMS_PER_FIELD)]
            for value in values:
                pairs = [(k, value if k == param else v) for k, v in sorted(params.items())]
                plan.append(("get", path, pairs, param, rng.random() < 0.25))

    # 3. forms: as found, with the marker in every text field, and mutated.
    for form in post_forms:
        base = [(f[0], f[2]) for f in form.fields if f[2] is not None]
        plan.append(("post", form.action, base, "", False))
        marked = [(f[0], MARKER if f[1] in TEXT_KINDS else f[2]) for f in form.fields if f[2] is not None]
        plan.append(("post", form.action, marked, "", False))
        for _ in range(MUTATIONS_PER_FORM):
            mutated, changed = [], []
            for fname, _kind, default, options in form.fields:
                if fname == "csrfmiddlewaretoken":
                    mutated.append((fname, default or ""))
                    continue
                roll = rng.random()
                if roll < 0.5:
                    value = rng.choice(EXTREMES)
                    changed.append(fname)
                elif roll < 0.6 and options:
                    value = rng.choice(options)
                else:
                    value = default
                if value is not None:
                    mutated.append((fname, value))
            plan.append(("post", form.action, mutated, ",".join(changed), rng.random() < 0.2))

    # Shuffled (seeded): a run cut short by the time budget still samples every kind of request.
    rng.shuffle(plan)
    for method, path, pairs, param, htmx in plan:
        if fz.out_of_time():
            break
        fz.send(method, path, pairs, name=name_of(path), param=param, htmx=htmx)
    fz.plan_size = len(plan)
    fz.patterns = len(pages)


# --------------------------------------------------------------------------- the tests

@pytest.fixture
def no_network(monkeypatch):
    """Robots and e-mail must not leave the machine while forms are fuzzed."""
    real_connect = socket.socket.connect

    def local_only(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")
                                          or sock.family == socket.AF_UNIX):
            raise OSError(f"page fuzz: no network ({host})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


@pytest.mark.parametrize("username", ["rep.east1", "manager.east"])
def test_pages_and_forms_give_no_5xx_and_never_reflect_markup(db, no_network, username):
    # A fixed day: the demo world, and so the forms and the plan drawn from them, are the same every run.
    with time_machine.travel(FROZEN_AT, tick=True):
        generate(reps=3, customers=12, months=2, seed=3)
        user = User.objects.get(username=username)
        client = Client(raise_request_exception=False)
        client.force_login(user)
        fz = run(user, random.Random(f"{SEED}-{username}"), client, time.monotonic() + TIME_BUDGET)
    summary = (f"{fz.requests} requests of a plan of {fz.plan_size} over {fz.patterns} URL patterns"
               + (" (time budget reached)" if fz.stopped_early else ""))
    print(f"page fuzz as {username}: {summary}; allowed (other branch): {len(fz.allowed)}", *fz.allowed[:20], sep="\n  ")
    assert not fz.findings, summary + "\n" + "\n".join(f"{f.status} {f.what} {f.detail}" for f in fz.findings[:40])
    # Every page pattern was crawled, and the plan went well beyond the crawl.
    assert fz.patterns >= 70 and fz.requests > 2 * fz.patterns
