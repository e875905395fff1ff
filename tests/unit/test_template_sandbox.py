"""The sandbox refuses escapes, stops runaway templates quickly in any thread, and a failing body falls back."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest
from jinja2.sandbox import unsafe

from channels_app.templating import TemplateFailure, render_body, render_slot, sample_context, slot
from channels_app.templating.sandbox import MAX_VALUE_CHARS, RENDER_SECONDS
from channels_app.templating.textsize import text_length

CONTEXT = sample_context("triggered")
# Generous against a loaded CI machine, and still far below "hangs the worker".
QUICK = RENDER_SECONDS + 1.5


def render(source: str, name: str = "email_text", context=None) -> str:
    return render_body(slot(name), source, CONTEXT if context is None else context)[0]


def failure(source: str, name: str = "email_text", context=None) -> TemplateFailure:
    with pytest.raises(TemplateFailure) as caught:
        render(source, name, context)
    return caught.value


class Account:
    def balance(self) -> int:
        return 1

    @unsafe
    def delete(self) -> None:
        raise AssertionError("the sandbox let a template call an unsafe method")

    def wipe(self) -> None:
        raise AssertionError("the sandbox let a template call a method that alters data")

    wipe.alters_data = True


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ incident.__class__ }}",
        "{{ range.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__['os'] }}",
        "{{ self.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ incident.start_time.tzinfo.__class__ }}",
        "{{ incident['__class__'] }}",
        "{{ 'x'['__class__'] }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ '{0}'.format_map({}) }}",
        "{{ (1).to_bytes(8, 'big') }}",
        "{{ 'x'.encode() }}",
        "{% set labels = incident.labels %}{{ labels.update({'a': 1}) }}",
        "{% set alerts = incident.alerts %}{{ alerts.append(1) }}",
        "{{ incident.labels.pop('host') }}",
    ],
)
def test_escapes_from_the_sandbox_are_refused(source):
    error = failure(source)
    assert "SecurityError" in error.message, error.message


def test_unsafe_callables_are_refused_and_safe_ones_run():
    context = {**CONTEXT, "account": Account()}
    assert render("{{ account.balance() }}", context=context) == "1"
    assert "SecurityError" in failure("{{ account.delete() }}", context=context).message
    assert "SecurityError" in failure("{{ account.wipe() }}", context=context).message


def test_no_loader_no_lipsum_and_no_includes():
    assert "lipsum" in failure("{{ lipsum(10**6) }}").message
    assert "loader" in failure("{% include 'email_text.j2' %}").message
    assert "loader" in failure("{% extends 'base.html' %}").message


@pytest.mark.parametrize(
    "source",
    [
        # loops that produce nothing and would run for days
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% set xs = incident.alerts * 2000 %}{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
        "{% for a in 'x' * 99999 %}{% for b in 'y' * 99999 %}{% endfor %}{% endfor %}",
        # exponential macro calls and a loop over a loop's own
        "{% macro a(n) %}{% if n %}{{ a(n - 1) }}{{ a(n - 1) }}{% endif %}{% endmacro %}{{ a(60) }}",
        "{% for x in range(100000) recursive %}{{ loop(range(100000)) }}{% endfor %}",
        "{{ range(100000)|map('string')|list|length }}{% for a in range(100000) %}{{ a|truncate(1) if False }}"
        "{% for b in range(100000) %}{% endfor %}{% endfor %}",
    ],
)
def test_runaway_loops_stop_at_the_deadline(source):
    started = time.monotonic()
    error = failure(source)
    elapsed = time.monotonic() - started
    assert elapsed < QUICK, elapsed
    assert "BudgetExceeded" in error.message or "too deeply" in error.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ 2 ** 1000000 }}",
        "{{ 10 ** 100000 }}",
        "{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{{ range(100000)|join('y' * 90000) }}",
        "{{ ('y' * 90000).join(range(100000)|map('string')) }}",
        "{{ ('x' * 50000)|replace('x', 'yyyyyyyyyy') }}",
        "{{ ('x' * 50000).replace('', 'yyyyyyyyyy') }}",
        "{{ 'x'|center(10**9) }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'.zfill(10**9) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ '%*d' % (10**9, 1) }}",
        "{{ '%999999999d'|format(1) }}",
        "{{ ('x\n' * 40000)|indent(999) }}",
        "{{ ('x' * 90000)|wordwrap(1, wrapstring='0123456789') }}",
        "{{ [[1]]|sum(start=[]) }}",
    ],
)
def test_huge_values_are_refused_before_they_are_built(source):
    started = time.monotonic()
    error = failure(source)
    assert time.monotonic() - started < QUICK
    assert "BudgetExceeded" in error.message


def test_a_template_that_writes_forever_is_stopped_at_the_slot_size():
    started = time.monotonic()
    text, truncated = render_body(slot("dingtalk"), "{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", CONTEXT)
    assert time.monotonic() - started < QUICK
    assert truncated
    assert len(text.encode()) <= 4000 and text.endswith("(truncated)")


def test_a_runaway_template_is_stopped_in_a_worker_thread_too():
    results = {}

    def work() -> None:
        started = time.monotonic()
        try:
            render("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
        except TemplateFailure as exc:
            results["error"] = exc.message
        results["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert "BudgetExceeded" in results["error"] and results["elapsed"] < QUICK


def test_syntax_and_runtime_errors_name_their_line():
    syntax = failure("Hello\n{{ incident.title }\nBye")
    assert syntax.line == 2 and str(syntax).startswith("line 2:")
    runtime = failure("a\nb\n{{ 1 / 0 }}")
    assert runtime.line == 3 and "ZeroDivisionError" in runtime.message
    assert "longer than 20000" in failure("x" * 20_001).message


def test_a_failing_custom_body_falls_back_to_the_default_and_says_why():
    rendered = render_slot("email_subject", bodies={"email_subject": "Hi\n{{ incident.title|nope }}"}, context=CONTEXT)
    assert rendered.origin == "default"
    assert rendered.text == "[Critical] #42 Disk usage above 90% on db-1"
    assert rendered.error.startswith("line 2:") and "nope" in rendered.error


def test_a_working_custom_body_is_used_and_an_empty_one_means_the_default():
    bodies = {"email_subject": "{{ incident.severity|upper }}: {{ incident.title }}", "sms": "  "}
    assert render_slot("email_subject", bodies=bodies, context=CONTEXT).text == "CRITICAL: Disk usage above 90% on db-1"
    assert render_slot("email_subject", bodies=bodies, context=CONTEXT).origin == "custom"
    assert render_slot("sms", bodies=bodies, context=CONTEXT).origin == "default"


@pytest.mark.parametrize("name", ["sms", "voice", "telegram", "wecom", "push_body", "email_subject", "webhook"])
@pytest.mark.parametrize(
    "body",
    ["{% if false %}x{% endif %}", "{% if incident.labels.nope %}x{% endif %}\n  \n"],
    ids=["nothing", "whitespace"],
)
def test_a_custom_body_that_renders_nothing_falls_back_to_the_default_and_says_why(name, body):
    # Every service refuses an empty message for good (Twilio 21602, Telegram "message text is empty", WeCom 44004).
    rendered = render_slot(name, bodies={name: body}, context=CONTEXT)
    assert rendered.origin == "default"
    assert rendered.text.strip()
    assert rendered.error == "The template rendered nothing."


def test_a_webhook_body_must_be_valid_json():
    quoted = failure('{"title": "{{ incident.title }}"}', "webhook")
    assert "not valid JSON" in quoted.message
    assert render('{"title": {{ incident.title }}, "n": {{ incident.alert_count }}}', "webhook") == (
        '{"title": "Disk usage above 90% on db-1", "n": 3}'
    )
    rendered = render_slot("webhook", bodies={"webhook": "{oops"}, context=CONTEXT)
    assert rendered.origin == "default" and '"event": "triggered"' in rendered.text


def test_the_platform_filters():
    assert render("{{ incident.start_time|date }}") == "2026-03-02 10:00:00 CET"
    assert render("{{ incident.start_time|date('%H:%M %Z', 'Asia/Shanghai') }}") == "17:00 CST"
    assert render("{{ 0|date('%Y-%m-%d', 'UTC') }}") == "1970-01-01"
    assert render("{{ incident.start_time|ago }}") == "12 minutes ago"
    assert render("{{ incident.ack_time|ago }}|{{ incident.ack_time|date }}") == "|"
    assert render("{{ '2026-03-02T09:13:00+00:00'|ago }}") == "in 1 minute"
    assert render("{{ '2026-02-28T06:00:00+00:00'|ago }}") == "2 days 3 hours ago"
    assert render("{{ incident.severity|severity_color }} {{ 'Warning'|severity_color }}") == "#C80000 #FA7D00"
    assert render("{{ incident|join_labels('host') }}") == "db-1, db-2, db-3"
    assert render("{{ incident.alerts|join_labels('region', ' / ') }}") == "eu-west-1"
    assert render("{{ incident.title|truncate(14) }}") == "Disk usage..."
    assert render("{{ incident.labels|tojson }}", "webhook") == (
        '{"host": "db-1", "service": "billing", "region": "eu-west-1"}'
    )
    assert "unknown time zone" in failure("{{ incident.start_time|date('%H', 'Mars/Olympus') }}").message


# 500 references to one 100 000-character string (MANY in each source): every part is within the limits, its
# text is 50 million characters (with 100 000 references it would be 10^10, past any worker's memory).
MANY = "['x' * 100000] * 500"
MANY_STRINGS = ", ".join(["s"] * 100)


@pytest.mark.parametrize(
    "source",
    [
        "{{ MANY }}",
        "{{ (MANY)|string }}",
        "{{ (MANY)|pprint }}",
        "{{ (MANY)|tojson }}",
        "{{ (MANY)|tojson(2) }}",
        "{{ '%s' % (MANY) }}",
        "{{ '%s'|format(MANY) }}",
        "{{ '%(a)s' % {'a': MANY} }}",
        "{{ {'a': MANY} }}",
        "{{ {'a': MANY}.values() }}",
        "{% set ns = namespace(a=MANY) %}{{ ns }}",
        "{{ (MANY)|safe }}",
        "{{ (MANY)|upper }}",
        "{{ (MANY) ~ '' }}",
        "{{ [MANY]|join }}",
        "{{ ''.join([MANY]) }}",
        "{{ 'x'.replace('x', MANY) }}",
        "{{ (MANY) is lower }}",
        "{{ [1].index(MANY) }}",  # the error names the missing value
        "{{ incident[('x' * 100000,) * 500] }}",  # so does the one for a missing key
        # many references to one string, formatted one by one
        "{% set s = 'x' * 100000 %}{{ ('%s' * 100) % (MANY_STRINGS) }}",
    ],
)
def test_a_list_too_long_as_text_is_refused_before_its_text_is_built(source):
    source = source.replace("MANY_STRINGS", MANY_STRINGS).replace("MANY", MANY)
    tracemalloc.start()
    try:
        error = failure(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "BudgetExceeded" in error.message and f"more than {MAX_VALUE_CHARS} characters" in error.message
    assert peak < 20 * MAX_VALUE_CHARS, f"{peak // 2**20} MB"


def test_lists_and_dicts_print_as_they_did():
    assert render("{{ [1, 'a', none] }}") == "[1, 'a', None]"
    assert render("{{ incident.labels|string }}") == "{'host': 'db-1', 'service': 'billing', 'region': 'eu-west-1'}"
    assert render("{{ {'a': [1, 2]}|pprint }}") == "{'a': [1, 2]}"
    assert render("{{ ['a', 1]|tojson }}", "webhook") == '["a", 1]'
    assert render("{{ {'a': [1]}|tojson(2) }}") == '{\n  "a": [\n    1\n  ]\n}'
    assert render("{{ 'labels: %s' % incident.labels.values()|list }}") == "labels: ['db-1', 'billing', 'eu-west-1']"
    assert render("{{ '%(host)s' % incident.labels }} {{ '%s-%s'|format('a', [1]) }}") == "db-1 a-[1]"
    assert (
        render("{{ ['ab', 'c']|join('/') }} {{ [1, 2] ~ '!' }} {{ incident.labels.host is lower }}")
        == "ab/c [1, 2]! True"
    )
    # A text just within the limit, and a long description formatted with a precision, still render.
    assert len(render("{{ ['x' * 99990] }}", "webhook")) == 99994
    assert render("{{ '%.3s' % long }}", context={**CONTEXT, "long": "y" * 200_000}) == "yyy"


@pytest.mark.parametrize(
    "value",
    [
        [],
        {},
        (1,),
        ["a", "", 1, None, 2.5, True],
        {"a": [1, {"b": ("c", "d")}], "e": {"f": ""}},
        {"x" * 10: ["y" * 20] * 3},
        {1: "one", 2: ["two"]},
        {"a": 1}.items(),
        {"a": 1}.keys(),
        frozenset({"a", "b"}),
    ],
)
def test_the_text_length_of_a_value_is_never_over_counted(value):
    # Over-counting would refuse a value that fits; `text_length` must stay at or below every real text of it.
    import json
    import pprint

    texts = [str(value), repr(value), pprint.pformat(value)]
    if not isinstance(value, (frozenset, type({}.items()), type({}.keys()))):
        texts += [json.dumps(value, default=str), json.dumps(value, default=str, indent=3)]
        assert text_length(value, 10**6, indent=3) <= len(texts[-1])
    assert text_length(value, 10**6) <= min(map(len, texts))


def test_counting_a_text_stops_soon_after_the_limit():
    nested = [["x" * 100_000] * 100_000] * 100_000  # 10^15 characters as text
    started = time.monotonic()
    assert 100 < text_length(nested, 100) < 10**6
    assert time.monotonic() - started < 0.5
