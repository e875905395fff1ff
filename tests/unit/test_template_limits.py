"""Cutting to each service's limit: bytes, characters or SMS segments, with a marker, never half a character."""

from __future__ import annotations

import re

import hypothesis
import pytest
from hypothesis import strategies as st

from channels_app.templating import SLOTS, render_body, sample_context
from channels_app.templating.limits import _closing_tags, sms_segments, split_blocks, truncate, truncate_sms
from channels_app.templating.render import check_body, render_slot

CONTEXT = sample_context("triggered")


def cut(name: str, text: str) -> tuple[str, bool]:
    return truncate(text, SLOTS[name], max_segments=3)


def test_a_byte_limit_counts_utf8_bytes_and_never_splits_a_character():
    text, truncated = cut("dingtalk", "数据库磁盘" * 1000)  # 15000 bytes
    assert truncated
    assert len(text.encode("utf-8")) <= 4000
    assert text.endswith("\n… (truncated)")
    assert set(text.removesuffix("\n… (truncated)")) <= set("数据库磁盘")
    for offset in range(4):  # whatever byte the cut falls on
        text, _ = cut("dingtalk", "x" * offset + "数" * 2000)
        text.encode("utf-8")  # a str that encodes is whole characters
        assert len(text.encode("utf-8")) <= 4000


def test_a_character_limit_counts_characters():
    text, truncated = cut("telegram", "数" * 5000)
    assert truncated and len(text) == 4096 and text.endswith("(truncated)")
    assert cut("telegram", "数" * 4096) == ("数" * 4096, False)


def test_a_cut_does_not_leave_half_an_escape_entity_or_tag():
    markdown, _ = cut("dingtalk", "a" * 3984 + "\\*" * 20)
    assert not markdown.removesuffix("\n… (truncated)").endswith("\\")
    lark, _ = cut("feishu", "a" * 3983 + "&#42;" * 10)
    assert lark.removesuffix("\n… (truncated)").endswith(("a", ";"))
    html, _ = cut("email_html", "<p>" + "x" * 99_960 + '<a href="https://example.com/long">link</a>')
    assert html.endswith("x</p><p>… (truncated)</p>"), "the paragraph cut short is closed"


def test_html_cut_inside_elements_closes_them_within_the_limit():
    text, truncated = cut("telegram", "<b>Disk</b> full\n<i>Labels: <code>" + "host=db-1 " * 1000 + "</code></i>")
    assert truncated and len(text) <= 4096
    assert text.endswith("</code></i>\n… (truncated)")
    kept, _ = cut("telegram", "<b>x</b><br>" + "y" * 5000)
    assert kept.endswith("y\n… (truncated)"), "nothing left open, nothing added (br has no end tag)"


def test_a_long_incident_in_the_default_telegram_template_stays_html_telegram_takes():
    """The default template puts the labels inside <code>: an incident with many of them is cut inside it, and
    Telegram refuses a text with a tag left open ("can't parse entities")."""
    rendered = render_slot("telegram", bodies=None, context=sample_context(variant="long"))
    assert rendered.truncated and len(rendered.text) <= 4096
    assert _closing_tags(rendered.text) == ""


def test_a_single_line_slot_gets_an_ellipsis():
    text, truncated = cut("email_subject", "word " * 100)
    assert truncated and len(text) == 200 and text.endswith("word…")


def test_a_json_body_over_its_limit_is_refused_not_cut():
    with pytest.raises(ValueError, match="limit"):
        cut("webhook", '{"a": "' + "x" * 300_000 + '"}')


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # an extended character takes two septets
        ("€" * 81, "GSM-7", 2),
        ("a" + "€" * 76, "GSM-7", 1),  # 153 septets fit one message…
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 2),  # …and the pair moves whole to the next part
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        ("Übermäßig Ölé ÄÖÑÜ àèé", "GSM-7", 1),  # these accents are in the GSM alphabet
        ("ê", "UCS-2", 1),  # this one is not
        ("数" * 70, "UCS-2", 1),
        ("数" * 71, "UCS-2", 2),
        ("数" * 134, "UCS-2", 2),
        ("数" * 135, "UCS-2", 3),
        ("🔥" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
        ("🔥" * 36, "UCS-2", 2),
        ("a" * 66 + "🔥", "UCS-2", 1),
        ("a" * 66 + "🔥" + "a" * 4, "UCS-2", 2),  # the pair is not split across parts
    ],
)
def test_sms_segments(text, encoding, segments):
    count = sms_segments(text)
    assert (count.encoding, count.segments) == (encoding, segments)


def test_an_sms_is_cut_to_its_segments_and_stays_gsm7_when_it_was():
    text, truncated = truncate_sms("Disk full on db-1. " * 40, 3)
    assert truncated and text.endswith("...")
    assert sms_segments(text).encoding == "GSM-7"
    assert sms_segments(text).segments == 3 and len(text) > 153 * 2
    ucs2, _ = truncate_sms("数据库磁盘" * 100, 2)
    assert ucs2.endswith("…") and sms_segments(ucs2).segments == 2


def test_sms_max_segments_comes_from_the_settings(settings):
    settings.SMS_MAX_SEGMENTS = 1
    long_title = {**CONTEXT, "incident": {**CONTEXT["incident"], "title": "Disk usage above 90% " * 10}}
    text, truncated = render_body(SLOTS["sms"], "{{ incident.title }} {{ incident.title }}", long_title)
    assert truncated and sms_segments(text).segments == 1 and len(text) == 160


ACK = "https://oncall.example.com/incidents/42/ack/1xXhfu:IQFRldb8fSWgehic4cvttJg9s_AA1ewlFnyj7ml_qxM/"
DETAIL = "https://oncall.example.com/incidents/42/"  # the start of ACK: found as itself only where it is alone
LINKS = (ACK, DETAIL)


def test_an_sms_cut_never_ends_inside_a_url():
    text, truncated = truncate_sms("Disk full. Runbook: https://wiki.example.com/" + "runbooks/" * 40, 1)
    assert truncated and text == "Disk full. Runbook:..."


def test_an_sms_keeps_its_link_lines_whole_and_cuts_the_other_text():
    text = "Disk full on db-1. " * 20 + f"\nAck: {ACK}\nDetails: {DETAIL}"
    cut, truncated = truncate_sms(text, 2, LINKS)
    assert truncated and sms_segments(cut).segments <= 2
    first, *links = cut.split("\n")
    assert first.startswith("Disk full on db-1. Disk") and first.endswith("...")
    assert links == [f"Ack: {ACK}", f"Details: {DETAIL}"]


def test_a_link_in_a_long_line_is_taken_out_of_it_and_the_rest_of_the_line_is_cut():
    text = "Disk full on db-1. " * 10 + f"Acknowledge at {ACK} or open {DETAIL} " + "Runbook steps. " * 10
    cut, _ = truncate_sms(text, 2, LINKS)
    assert sms_segments(cut).segments <= 2
    first, links = cut.split("\n")
    assert first.startswith("Disk full on db-1.") and first.endswith("...")
    assert links == f"{ACK} {DETAIL}"


def test_the_acknowledge_link_stays_when_both_links_do_not_fit():
    base = "https://oncall.operations.example-corporation.com/incidents/42/"
    ack, detail = base + ACK.removeprefix(DETAIL), base
    assert len(ack) + len(detail) > 160  # not both in one segment, whatever is left out
    text = f"Disk full on db-1.\nAck: {ack}\nDetails: {detail}"
    assert truncate_sms(text, 1, (ack, detail)) == (f"Disk full on db-1.\nAck: {ack}", True)


def test_a_link_that_cannot_fit_even_alone_is_left_out_whole():
    """With SMS_MAX_SEGMENTS=1 and a long PUBLIC_URL, an SMS that says which incident it is beats a link that cannot
    be opened; the system check warns about it at startup (channels.W002)."""
    long_ack = "https://oncall.internal.operations.example-corporation.com/platform/on-call/" + ACK[27:] + "x" * 40
    cut, truncated = truncate_sms(f"Triggered: [Critical] #42 Disk full on db-1.\nAck: {long_ack}", 1, (long_ack,))
    assert truncated and cut == "Triggered: [Critical] #42 Disk full on db-1."


WORDS = st.sampled_from(["Disk", "full", "db-1", "—", "数据库", "磁盘", "🔥", "{", "\n", " ", "Ack:", ACK, DETAIL])


@hypothesis.given(words=st.lists(WORDS, max_size=300), max_segments=st.integers(1, 4))
@hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
def test_whatever_the_text_an_sms_cut_keeps_both_links_whole_and_fits(words, max_segments):
    text = " ".join("".join(words).split(" "))
    cut, _ = truncate_sms(text, max_segments, LINKS)
    assert sms_segments(cut).segments <= max_segments
    whole = re.sub(f"{re.escape(ACK)}|{re.escape(DETAIL)}", "", cut)
    assert "https:" not in whole and "oncall.example" not in whole, cut  # no link is left in part
    for link in LINKS:  # both fit together in one segment, once the rest gives way
        if re.search(re.escape(link) + ("" if link == ACK else "(?!ack/)"), text):
            assert link in cut


def test_a_custom_sms_keeps_a_link_written_after_a_long_description(settings):
    """The render goes on past the SMS's 1600 characters, so the link is there to be kept."""
    context = {**CONTEXT, "ack_url": ACK, "incident": {**CONTEXT["incident"], "description": "Stack trace. " * 600}}
    text, truncated = render_body(SLOTS["sms"], "{{ incident.description }}\nAck: {{ ack_url }}", context)
    assert truncated and text.endswith(f"...\nAck: {ACK}")
    assert sms_segments(text).segments <= settings.SMS_MAX_SEGMENTS


def test_slack_text_splits_into_section_blocks_at_line_breaks():
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(100))
    blocks = split_blocks(text, 3000)
    assert all(len(block) <= 3000 for block in blocks)
    assert "\n".join(blocks) == text
    assert [len(b) for b in split_blocks("y" * 7000)] == [3000, 3000, 1000]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<b>{{ incident.title }}</b><br>{{ headline }}", "<br> is not a supported tag"),
        ("<b>[{{ incident.severity }}] {{ incident.title }}\n{{ headline }}", "<b> is never closed"),
        ("<b><i>{{ incident.title }}</b></i>", "</b> where </i> was expected"),
        ("{{ incident.title }}</b>", "</b> closes no open tag"),
        ("<p>{{ incident.title }}</p>", "<p> is not a supported tag"),
        ("{{ incident.title|raw }} {{ '< 5 min'|raw }}", "a bare < (write &lt;)"),
        ("<b>{{ '' }}</b>\n<i> </i>", "The template rendered nothing."),
    ],
    ids=["br", "unclosed", "crossed", "stray-end", "p", "bare-lt", "only-tags"],
)
def test_a_telegram_body_telegram_could_not_parse_falls_back_to_the_default(body, problem):
    """Telegram refuses such a text for good (400 "can't parse entities"): the default is sent instead."""
    rendered = render_slot("telegram", bodies={"telegram": body}, context=CONTEXT)
    assert rendered.origin == "default"
    assert problem in rendered.error
    assert rendered.text.startswith("<b>[Critical] #42 Disk usage above 90% on db-1</b>")


@pytest.mark.parametrize(
    "body",
    [
        '<b>{{ incident.title }}</b> <span class="tg-spoiler">{{ incident.channel }}</span>',
        '<tg-emoji emoji-id="5368324170671202286">🔥</tg-emoji> <b>{{ incident.title }}</b>',
        '<blockquote expandable><code class="language-sh">df -h</code></blockquote> {{ incident.title }}',
    ],
    ids=["spoiler-span", "custom-emoji", "expandable-quote"],
)
def test_telegram_markup_the_bot_api_documents_is_sent_as_written_and_can_be_saved(body):
    assert render_slot("telegram", bodies={"telegram": body}, context=CONTEXT).origin == "custom"
    assert check_body("telegram", body, [CONTEXT]) == ""


def test_telegram_tags_closed_in_order_are_kept_even_when_the_text_is_cut():
    ok = '<b>{{ incident.title }}</b> <i>&amp; Q&A</i> <a href="{{ detail_url|raw }}">Open</a>\n<pre>x</pre>'
    assert render_slot("telegram", bodies={"telegram": ok}, context=CONTEXT).origin == "custom"
    # Cut inside <code> (the render stops at the limit): the cut closes what it leaves open.
    long = "<b>{{ incident.title }}</b>\n<code>{% for n in range(3000) %}host=db-{{ n }} {% endfor %}</code>"
    rendered = render_slot("telegram", bodies={"telegram": long}, context=CONTEXT)
    assert (rendered.origin, rendered.truncated) == ("custom", True)
    assert rendered.text.endswith("</code>\n… (truncated)")
