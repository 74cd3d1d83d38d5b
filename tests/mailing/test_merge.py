"""The merge engine (mailing/merge.py): every case asserts the exact output.

Handlebars cases for the standard language (paths, escaping, blocks, whitespace) give what
Handlebars.js 4 gives, with two deliberate exceptions: top-level names match case-insensitively (as
Mandrill documents for merge vars), and an object prints nothing instead of "[object Object]".
Mandrill's additions (elseif, backtick comparisons, its helpers) follow Mandrill's documented
examples. The hostile templates at the end must be refused with MergeError, quickly.
"""

import os
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailing.merge import (
    MAX_NESTING,
    MAX_OUTPUT_CHARS,
    MAX_TAGS,
    MergeContext,
    MergeError,
    fill_editable_regions,
    merge_vars_for,
    render,
)

NOW = datetime(2024, 2, 29, 9, 5, 3, tzinfo=UTC)  # a leap day, a Thursday
CONTEXT = MergeContext(
    subject="Your order", recipient_email="ann@example.com", now=NOW, unsubscribe_url="https://u.example/x1"
)


def mailchimp(text, variables=None, context=CONTEXT):
    return render(text, language="mailchimp", variables=variables or {}, context=context)


def handlebars(text, variables=None, context=CONTEXT):
    return render(text, language="handlebars", variables=variables or {}, context=context)


def refusal(call) -> str:
    with pytest.raises(MergeError) as caught:
        call()
    assert str(caught.value) == caught.value.message
    return caught.value.message


# --- Mailchimp ----------------------------------------------------------------------------------------

MAILCHIMP_CASES = [
    # plain tags
    pytest.param("Hello *|FNAME|*!", {"FNAME": "Ann"}, "Hello Ann!", id="tag"),
    pytest.param("*|fname|* *|FName|* *|FNAME|*", {"FNAME": "Ann"}, "Ann Ann Ann", id="tag-case-insensitive"),
    pytest.param("*|FNAME|*", {"fName": "ann"}, "ann", id="variable-name-case-insensitive"),
    pytest.param("Hi *|NOPE|*.", {}, "Hi .", id="missing-is-empty"),
    pytest.param("*|A|*", {"A": None}, "", id="null-is-empty"),
    pytest.param("*|BODY|*", {"BODY": "<b>x</b> & y"}, "<b>x</b> & y", id="values-not-escaped"),
    pytest.param(
        "*|N|* *|F|* *|W|* *|T|* *|L|* *|O|*",
        {"N": 3, "F": 2.5, "W": 4.0, "T": True, "L": [1, "a", None], "O": {"k": 1}},
        "3 2.5 4 true 1,a, ",
        id="values-spelt-as-json",
    ),
    pytest.param("*|A|*", {"A": "*|B|*", "B": "no"}, "*|B|*", id="values-not-merged-again"),
    pytest.param("Grüße *|NAME|* ✓", {"NAME": "Zoë 🎉"}, "Grüße Zoë 🎉 ✓", id="unicode"),
    pytest.param("*| not a tag |* a *|b *||* |*", {"B": 1}, "*| not a tag |* a *|b *||* |*", id="not-tags"),
    pytest.param("*|LIST:COMPANY|*x*|ARCHIVE|*", {}, "x", id="campaign-tags-empty"),
    # conditions
    pytest.param("*|IF:NAME|*yes*|END:IF|*", {"NAME": "x"}, "yes", id="if-provided"),
    pytest.param("*|IF:NAME|*yes*|END:IF|*", {"NAME": ""}, "", id="if-empty-string"),
    pytest.param("*|IF:NAME|*yes*|END:IF|*", {}, "", id="if-missing"),
    pytest.param("*|IF:NAME|*yes*|END:IF|*", {"NAME": 0}, "yes", id="if-zero-is-a-value"),
    pytest.param("*|IF:NAME|*yes*|ELSE:|*no*|END:IF|*", {"NAME": False}, "no", id="if-false"),
    pytest.param("*|IF:NAME|*yes*|ELSE:|*no*|END:IF|*", {"NAME": []}, "no", id="if-empty-array"),
    pytest.param("*|IFNOT:NAME|*none*|ELSE:|*some*|END:IF|*", {}, "none", id="ifnot-missing"),
    pytest.param("*|IFNOT:NAME|*none*|ELSE:|*some*|END:IF|*", {"NAME": "x"}, "some", id="ifnot-provided"),
    pytest.param("*|if:a|*x*|else:|*y*|end:if|*", {"A": 1}, "x", id="keywords-case-insensitive"),
    pytest.param(
        "*|IF:A|*a*|ELSEIF:B|*b*|ELSEIF:C|*c*|ELSE:|*none*|END:IF|*", {"C": 1}, "c", id="elseif-chain"
    ),
    pytest.param("*|IF:A|*a*|ELSEIF:B|*b*|ELSE:|*none*|END:IF|*", {}, "none", id="elseif-to-else"),
    pytest.param(
        "<*|IF:A|*a*|IF:B|*b*|ELSE:|*!b*|END:IF|**|ELSE:|*!a*|IF:B|*b*|END:IF|**|END:IF|*>",
        {"A": 1},
        "<a!b>",
        id="nested",
    ),
    pytest.param(
        "<*|IF:A|*a*|IF:B|*b*|ELSE:|*!b*|END:IF|**|ELSE:|*!a*|IF:B|*b*|END:IF|**|END:IF|*>",
        {"B": 1},
        "<!ab>",
        id="nested-else",
    ),
    # comparisons: numbers when both sides are numbers, else text
    pytest.param("*|IF:COUNT>3|*many*|ELSE:|*few*|END:IF|*", {"COUNT": "10"}, "many", id="gt-numeric-string"),
    pytest.param("*|IF:COUNT>3|*many*|ELSE:|*few*|END:IF|*", {"COUNT": 2}, "few", id="gt-number"),
    pytest.param("*|IF:COUNT=3|*three*|END:IF|*", {"COUNT": 3.0}, "three", id="eq-numeric"),
    pytest.param("*|IF:COUNT=3|*three*|END:IF|*", {"COUNT": "3.00"}, "three", id="eq-numeric-string"),
    pytest.param("*|IF:COUNT==3|*three*|END:IF|*", {"COUNT": 3}, "three", id="double-equals"),
    pytest.param("*|IF:COUNT > 3|*many*|END:IF|*", {"COUNT": 4}, "many", id="spaces-around-operator"),
    pytest.param("*|IF:COUNT<=3|*le*|END:IF|**|IF:COUNT>=3|*ge*|END:IF|*", {"COUNT": 3}, "lege", id="le-ge"),
    pytest.param("*|IF:COUNT<3|*lt*|ELSE:|*not*|END:IF|*", {"COUNT": "-1.5"}, "lt", id="lt-negative"),
    pytest.param("*|IF:NAME>b|*gt*|ELSE:|*le*|END:IF|*", {"NAME": "abc"}, "le", id="gt-text"),
    pytest.param(
        "*|IF:CODE<9|*lt*|ELSE:|*ge*|END:IF|*", {"CODE": "10a"}, "lt", id="lt-text-when-not-a-number"
    ),
    pytest.param(
        "*|IF:PLAN=Pro|*pro*|ELSE:|*other*|END:IF|*", {"PLAN": "pro"}, "other", id="eq-case-sensitive"
    ),
    pytest.param('*|IF:PLAN="pro plan"|*yes*|END:IF|*', {"PLAN": "pro plan"}, "yes", id="eq-quoted"),
    pytest.param("*|IF:PLAN=|*empty*|END:IF|*", {"PLAN": ""}, "empty", id="eq-empty"),
    pytest.param("*|IF:PLAN=|*empty*|ELSE:|*missing*|END:IF|*", {}, "missing", id="eq-missing-false"),
    pytest.param("*|IF:PLAN!=pro|*not pro*|END:IF|*", {}, "not pro", id="ne-missing-true"),
    pytest.param("*|IF:PLAN>1|*x*|ELSE:|*y*|END:IF|*", {}, "y", id="gt-missing-false"),
    pytest.param("*|IF:VIP=true|*vip*|END:IF|*", {"VIP": True}, "vip", id="eq-boolean-as-json"),
    pytest.param("*|IFNOT:COUNT>3|*few*|END:IF|*", {"COUNT": 1}, "few", id="ifnot-comparison"),
    # standard tags
    pytest.param("*|CURRENT_YEAR|*", {}, "2024", id="current-year"),
    pytest.param("*|DATE:d/m/Y|*", {}, "29/02/2024", id="date"),
    pytest.param("*|DATE:D, jS F Y H:i:s|*", {}, "Thu, 29th February 2024 09:05:03", id="date-words"),
    pytest.param(
        "*|DATE:L t N w z W y n j G g A a|*", {}, "1 29 4 4 59 09 24 2 29 9 9 AM am", id="date-letters"
    ),
    pytest.param("*|date:\\Y\\e\\a\\r: Y|*", {}, "Year: 2024", id="date-escapes"),
    pytest.param("*|DATE:c|*", {}, "2024-02-29T09:05:03+00:00", id="date-iso"),
    pytest.param("*|MC:SUBJECT|*", {}, "Your order", id="subject"),
    pytest.param("*|EMAIL|*", {}, "ann@example.com", id="email"),
    pytest.param("*|EMAIL|*", {"EMAIL": "given"}, "given", id="supplied-var-wins"),
    pytest.param("*|UNSUB|*", {}, "https://u.example/x1", id="unsub"),
    pytest.param(
        "*|UNSUB:https://example.com/bye?a=1|*",
        {},
        "https://u.example/x1?redirect=https%3A%2F%2Fexample.com%2Fbye%3Fa%3D1",
        id="unsub-redirect",
    ),
]


@pytest.mark.parametrize(("template", "variables", "expected"), MAILCHIMP_CASES)
def test_mailchimp(template, variables, expected):
    assert mailchimp(template, variables) == expected


def test_mailchimp_standard_tags_without_a_context():
    # given no unsubscribe link, subject or address: the tags are safe to leave in, they render empty
    context = MergeContext(now=NOW)
    # when / then
    assert mailchimp("[*|UNSUB|*][*|UNSUB:https://x.example|*][*|MC:SUBJECT|*][*|EMAIL|*]", {}, context) == (
        "[][][][]"
    )


def test_mailchimp_unsub_redirect_joins_an_existing_query():
    context = MergeContext(unsubscribe_url="https://u.example/?t=1")
    assert mailchimp("*|UNSUB:https://r.example|*", {}, context) == (
        "https://u.example/?t=1&redirect=https%3A%2F%2Fr.example"
    )


def test_now_defaults_to_the_current_time_and_a_naive_now_is_utc():
    assert mailchimp("*|CURRENT_YEAR|*", {}, MergeContext()) == str(datetime.now(UTC).year)
    assert mailchimp("*|DATE:H:i O|*", {}, MergeContext(now=datetime(2024, 1, 2, 3, 4))) == "03:04 +0000"
    later = MergeContext(now=datetime(2024, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5, minutes=-30))))
    assert mailchimp("*|DATE:P O Z|*", {}, later) == "-05:30 -0530 -19800"


MAILCHIMP_REFUSALS = [
    pytest.param("*|IF:A|*x", "*|IF:A|* is never closed with *|END:IF|*.", id="unclosed"),
    pytest.param("x*|END:IF|*", "*|END:IF|* has no *|IF:…|* to close.", id="stray-end"),
    pytest.param("*|ELSE:|*", "*|ELSE:|* has no *|IF:…|* before it.", id="stray-else"),
    pytest.param("*|ELSEIF:A|*", "*|ELSEIF:A|* has no *|IF:…|* before it.", id="stray-elseif"),
    pytest.param(
        "*|IF:A|*1*|ELSE:|*2*|ELSEIF:B|*3*|END:IF|*",
        "*|ELSEIF:B|* comes after the *|ELSE:|* of its *|IF:…|*.",
        id="elseif-after-else",
    ),
    pytest.param(
        "*|IF:A B|*x*|END:IF|*",
        "*|IF:A B|* is not a condition: write *|IF:NAME|* or *|IF:NAME=value|*.",
        id="bad",
    ),
    pytest.param(
        "*|IF:|*x*|END:IF|*", "*|IF:|* is not a condition: write *|IF:NAME|* or *|IF:NAME=value|*.", id="e"
    ),
    pytest.param(
        "*|IF:A|*x*|END:FOR|*",
        "*|END:FOR|* is not a tag Mandrill knows: conditions end with *|END:IF|*.",
        id="end-for",
    ),
    pytest.param("*|IF:A|*x*|ELSE:B|*y*|END:IF|*", "*|ELSE:B|* should be written *|ELSE:|*.", id="else-arg"),
]


@pytest.mark.parametrize(("template", "message"), MAILCHIMP_REFUSALS)
def test_mailchimp_refuses_a_template_that_does_not_parse(template, message):
    assert refusal(lambda: mailchimp(template, {"A": 1})) == message


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: render("x", language="liquid", variables={}),
            'merge_language must be "mailchimp" or "handlebars".',
            id="language",
        ),
        pytest.param(
            lambda: render("x", language="Mailchimp", variables={}),
            'merge_language must be "mailchimp" or "handlebars".',
            id="language-case",
        ),
        pytest.param(
            lambda: render(None, language="mailchimp", variables={}),
            "The content to merge must be a string.",
            id="text",
        ),
        pytest.param(
            lambda: render("x", language="mailchimp", variables=[("A", 1)]),
            "The merge variables must be an object of names and values.",
            id="variables",
        ),
        pytest.param(
            lambda: render("x", language="handlebars", variables={1: "a"}),
            "Merge variable names must be strings.",
            id="names",
        ),
    ],
)
def test_render_refuses_wrong_arguments(call, message):
    assert refusal(call) == message


# --- Handlebars ---------------------------------------------------------------------------------------

ORDER = {
    "name": "Ann",
    "items": [
        {"title": "Computer", "price": 999.5, "tags": ["new", "sale"]},
        {"title": "Mouse", "price": 20, "tags": []},
    ],
    "address": {"city": "Lyon", "zip": "69001"},
    "empty": [],
}

HANDLEBARS_CASES = [
    # output and escaping
    pytest.param("Hi {{name}}!", {"name": "Ann"}, "Hi Ann!", id="variable"),
    pytest.param(
        "{{x}}",
        {"x": '<a href="x">\'&`='},
        "&lt;a href&#x3D;&quot;x&quot;&gt;&#x27;&amp;&#x60;&#x3D;",
        id="escaped",
    ),
    pytest.param("{{{x}}}|{{& x}}", {"x": "<b>&</b>"}, "<b>&</b>|<b>&</b>", id="triple-stash-raw"),
    pytest.param("{{ x }}{{{ x }}}", {"x": "<i>"}, "&lt;i&gt;<i>", id="spaces-inside"),
    pytest.param("a{{nope}}b{{nope.deeper.still}}c{{{nope}}}", {}, "abc", id="missing-is-empty"),
    pytest.param(
        "{{n}} {{f}} {{w}} {{t}} {{z}} {{l}}",
        {"n": 3, "f": 2.5, "w": 4.0, "t": False, "z": 0, "l": [1, [2, 3], None]},
        "3 2.5 4 false 0 1,2,3,",
        id="values",
    ),
    pytest.param("[{{o}}]", {"o": {"a": 1}}, "[]", id="object-has-no-text"),
    pytest.param("{{prénom}} ✓ {{x}}", {"prénom": "Zoë", "x": "🎉"}, "Zoë ✓ 🎉", id="unicode"),
    # paths
    pytest.param("{{address.city}} {{address/zip}} {{address.[zip]}}", ORDER, "Lyon 69001 69001", id="paths"),
    pytest.param(
        "{{items.[0].title}} {{items.1.title}} {{items.length}}", ORDER, "Computer Mouse 2", id="index"
    ),
    pytest.param("{{[first name]}}|{{this.[first name]}}", {"first name": "A"}, "A|A", id="segment-literal"),
    pytest.param("{{name.length}} {{items.[9].title}}", ORDER, "3 ", id="length-and-out-of-range"),
    pytest.param(
        "{{NAME}} {{Name}} {{name}}", {"name": "Ann"}, "Ann Ann Ann", id="top-level-case-insensitive"
    ),
    pytest.param(
        "{{name}}|{{NAME}}|{{Name}}", {"name": "low", "NAME": "up"}, "low|up|low", id="exact-name-first"
    ),
    pytest.param("[{{address.CITY}}]", ORDER, "[]", id="nested-keys-exact"),
    # if, unless, else
    pytest.param("{{#if name}}yes{{else}}no{{/if}}", {"name": "x"}, "yes", id="if"),
    pytest.param(
        "{{#if a}}1{{/if}}{{#if b}}2{{/if}}{{#if c}}3{{/if}}{{#if d}}4{{/if}}{{#if e}}5{{/if}}{{#if f}}6{{/if}}",
        {"a": 0, "b": "", "c": [], "d": {}, "e": "0", "f": None},
        "45",
        id="if-truthiness",
    ),
    pytest.param("{{#unless a}}U{{else}}E{{/unless}}", {"a": False}, "U", id="unless"),
    pytest.param("{{#unless a}}U{{else}}E{{/unless}}", {"a": 1}, "E", id="unless-else"),
    pytest.param("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"b": 1}, "B", id="else-if"),
    pytest.param("{{#if a}}A{{elseif b}}B{{elseif c}}C{{else}}D{{/if}}", {"c": 1}, "C", id="elseif-mandrill"),
    pytest.param("{{#if a}}A{{elseif b}}B{{else}}D{{/if}}", {}, "D", id="elseif-to-else"),
    pytest.param("{{#if a}}A{{else each l}}{{this}}{{/if}}", {"l": [1, 2]}, "12", id="else-each"),
    pytest.param("{{#if a}}{{#if b}}ab{{else}}a{{/if}}{{else}}-{{/if}}", {"a": 1}, "a", id="nested-if"),
    # Mandrill's backtick comparisons
    pytest.param("{{#if `purchases > 3`}}many{{else}}few{{/if}}", {"purchases": "10"}, "many", id="bt-gt"),
    pytest.param("{{#if `purchases > 3`}}many{{else}}few{{/if}}", {"purchases": 3}, "few", id="bt-gt-equal"),
    pytest.param('{{#if `type == "product"`}}P{{else}}-{{/if}}', {"type": "product"}, "P", id="bt-eq-string"),
    pytest.param("{{#if `type == 'product'`}}P{{else}}-{{/if}}", {"type": "service"}, "-", id="bt-eq-single"),
    pytest.param("{{#if `a != b`}}diff{{else}}same{{/if}}", {"a": 1, "b": "1.0"}, "same", id="bt-numbers"),
    pytest.param("{{#if `a == b`}}eq{{else}}ne{{/if}}", {"a": "x", "b": "x"}, "eq", id="bt-two-paths"),
    pytest.param("{{#if `price >= 9.99`}}y{{else}}n{{/if}}", {"price": 9.98}, "n", id="bt-float"),
    pytest.param("{{#if `count <= -1`}}neg{{/if}}", {"count": -3}, "neg", id="bt-negative"),
    pytest.param("{{#if `n === 3`}}a{{/if}}{{#if `n !== 3`}}b{{/if}}", {"n": "3"}, "a", id="bt-strict-forms"),
    pytest.param("{{#if `flag == true`}}on{{/if}}", {"flag": True}, "on", id="bt-boolean"),
    pytest.param('{{#if `x == ""`}}e{{else}}m{{/if}}', {}, "m", id="bt-missing-equals-nothing"),
    pytest.param('{{#if `x != "a"`}}ne{{/if}}', {}, "ne", id="bt-missing-not-equal"),
    pytest.param("{{#if `x`}}t{{else}}f{{/if}}", {"x": 0}, "f", id="bt-bare"),
    pytest.param(
        "{{#if `n < 0`}}neg{{elseif `n == 0`}}zero{{elseif `n > 0`}}pos{{/if}}",
        {"n": 0},
        "zero",
        id="bt-elseif",
    ),
    pytest.param("{{#unless `n > 1`}}small{{/unless}}", {"n": 1}, "small", id="bt-unless"),
    pytest.param(
        "{{#each items}}{{#if `price > ../limit`}}{{title}} {{/if}}{{/each}}",
        {**ORDER, "limit": 100},
        "Computer ",
        id="bt-parent-path",
    ),
    # each
    pytest.param(
        "{{#each items}}{{@index}}:{{title}}{{#if @first}}(first){{/if}}{{#if @last}}(last){{/if}};{{/each}}",
        ORDER,
        "0:Computer(first);1:Mouse(last);",
        id="each-data",
    ),
    pytest.param(
        "{{#each l}}[{{this}}|{{.}}|{{@first}}|{{@last}}]{{/each}}",
        {"l": ["a"]},
        "[a|a|true|true]",
        id="each-this",
    ),
    pytest.param(
        "{{#each o}}{{@key}}={{this}}@{{@index}};{{/each}}",
        {"o": {"b": 1, "a": 2}},
        "b=1@0;a=2@1;",
        id="each-object",
    ),
    pytest.param(
        "{{#each items}}{{title}}:{{#each tags}}{{../title}}/{{this}}@{{@../index}}.{{@index}} {{else}}none {{/each}}{{/each}}",
        ORDER,
        "Computer:Computer/new@0.0 Computer/sale@0.1 Mouse:none ",
        id="each-nested",
    ),
    pytest.param(
        "{{#each items}}{{../name}}{{@root.name}}{{/each}}", ORDER, "AnnAnnAnnAnn", id="each-parent-root"
    ),
    pytest.param("{{#each empty}}x{{else}}nothing{{/each}}", ORDER, "nothing", id="each-else"),
    pytest.param("{{#each name}}x{{else}}not a list{{/each}}", ORDER, "not a list", id="each-over-text"),
    pytest.param("{{#each missing}}x{{/each}}", {}, "", id="each-missing"),
    # with
    pytest.param(
        "{{#with address}}{{city}} {{zip}} {{../name}}{{/with}}", ORDER, "Lyon 69001 Ann", id="with"
    ),
    pytest.param("{{#with nope}}x{{else}}no address{{/with}}", ORDER, "no address", id="with-else"),
    pytest.param("{{#with n}}[{{this}}]{{/with}}", {"n": 0}, "[0]", id="with-zero"),
    pytest.param(
        "{{#each l}}{{#with this}}{{@index}}{{a}}{{/with}}{{/each}}",
        {"l": [{"a": "x"}, {"a": "y"}]},
        "0x1y",
        id="with-keeps-index",
    ),
    # sections, as in Mandrill's docs ({{#items}}<li>{{this}}</li>{{/items}})
    pytest.param(
        "<ul>{{#items}}<li>{{this}}</li>{{/items}}</ul>",
        {"items": ["Computer", "Monitor"]},
        "<ul><li>Computer</li><li>Monitor</li></ul>",
        id="section-list",
    ),
    pytest.param("{{#address}}{{city}}{{/address}}", ORDER, "Lyon", id="section-object"),
    pytest.param("{{#flag}}on {{name}}{{/flag}}", {"flag": True, "name": "A"}, "on A", id="section-true"),
    pytest.param("{{#flag}}on{{/flag}}{{#nope}}x{{/nope}}", {"flag": False}, "", id="section-false"),
    pytest.param("{{^empty}}none{{/empty}}{{^items}}none{{/items}}", ORDER, "none", id="inverted-section"),
    pytest.param("{{#address.city}}[{{this}}]{{/address.city}}", ORDER, "[Lyon]", id="section-path"),
    # Mandrill's helpers
    pytest.param('{{upper "your text"}} {{lower "YOUR Text"}}', {}, "YOUR TEXT your text", id="upper-lower"),
    pytest.param('{{title "your text is neat"}}', {}, "Your Text is Neat", id="title-documented"),
    pytest.param(
        "{{title t}}", {"t": "the lord of the rings"}, "The Lord of the Rings", id="title-small-words"
    ),
    pytest.param(
        '{{url "http://yourawesomeurl.com"}}', {}, "http%3A%2F%2Fyourawesomeurl.com", id="url-documented"
    ),
    pytest.param("{{url q}}", {"q": "a b&c=d/é"}, "a+b%26c%3Dd%2F%C3%A9", id="url-like-php-urlencode"),
    pytest.param("{{date}}", {}, "29/02/2024", id="date-default"),
    pytest.param('{{date "Y-m-d"}} {{date fmt}}', {"fmt": "l"}, "2024-02-29 Thursday", id="date-format"),
    pytest.param(
        "{{striptags h}}|{{{striptags h}}}",
        {"h": "<p>a &amp; <b>b</b></p><!-- c --> 1 < 2"},
        "a &amp;amp; b 1 &lt; 2|a &amp; b 1 < 2",
        id="striptags",
    ),
    pytest.param(
        "{{upper n}}|{{{upper n}}}",
        {"n": "<b>straße</b>"},
        "&lt;B&gt;STRASSE&lt;/B&gt;|<B>STRASSE</B>",
        id="helper-escaping",
    ),
    pytest.param("{{upper missing}}|{{url missing}}", {}, "|", id="helper-missing"),
    pytest.param(
        "<a href='{{unsub \"http://r.example\"}}'>x</a>",
        {},
        "<a href='https://u.example/x1?redirect&#x3D;http%3A%2F%2Fr.example'>x</a>",
        id="unsub-literal",
    ),
    pytest.param(
        "{{{unsub redirect}}}",
        {"redirect": "https://r.example"},
        "https://u.example/x1?redirect=https%3A%2F%2Fr.example",
        id="unsub-var",
    ),
    pytest.param("{{unsub}}", {}, "https://u.example/x1", id="unsub-bare"),
    pytest.param(
        "{{upper}} {{title}}", {"upper": "u", "title": "t"}, "u t", id="helper-names-alone-are-variables"
    ),
    # comments, escapes, whitespace
    pytest.param("a{{! note }}b{{!-- has }} inside --}}c", {}, "abc", id="comments"),
    pytest.param("\\{{x}} \\\\{{x}}", {"x": 1}, "{{x}} \\1", id="escaped-mustache"),
    pytest.param("a  {{~x~}}  b", {"x": "X"}, "aXb", id="tilde"),
    pytest.param("a \n {{~#if t~}} \n b \n {{~/if~}} \n c", {"t": 1}, "abc", id="tilde-blocks"),
    pytest.param(
        "<ul>\n  {{#each l}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>\n",
        {"l": [1, 2]},
        "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n",
        id="standalone-lines",
    ),
    pytest.param(
        "{{#if a}}\r\nyes\r\n{{else}}\r\nno\r\n{{/if}}\r\n", {"a": 0}, "no\r\n", id="standalone-crlf"
    ),
    pytest.param("line1\n  {{! note }}\nline2", {}, "line1\nline2", id="standalone-comment"),
    pytest.param("x {{#if a}}\ny\n{{/if}} z", {"a": 1}, "x \ny\n z", id="not-standalone"),
    pytest.param("{{#if a}} {{/if}}|{{x}}\n", {"a": 1, "x": 1}, " |1\n", id="outputs-keep-their-line"),
]


@pytest.mark.parametrize(("template", "variables", "expected"), HANDLEBARS_CASES)
def test_handlebars(template, variables, expected):
    assert handlebars(template, variables) == expected


HANDLEBARS_REFUSALS = [
    pytest.param("{{#if a}}x", "{{#if a}} is never closed.", id="unclosed-block"),
    pytest.param("x{{/if}}", "{{/if}} closes no block.", id="stray-close"),
    pytest.param("{{#each a}}{{/with}}", "{{#each a}} is closed by {{/with}}.", id="mismatched-close"),
    pytest.param("{{else}}", "{{else}} is not inside a block.", id="stray-else"),
    pytest.param(
        "{{#if a}}1{{else}}2{{else}}3{{/if}}",
        "{{#if a}} has another branch after its {{else}}.",
        id="two-else",
    ),
    pytest.param(
        "{{#if a}}1{{else}}2{{elseif b}}3{{/if}}",
        "{{#if a}} has another branch after its {{else}}.",
        id="elseif-after-else",
    ),
    pytest.param("a {{x", "The {{ on line 1 is never closed with }}.", id="unclosed-mustache"),
    pytest.param("a\nb\n{{{x}}", "The {{ on line 3 is never closed with }}.", id="unclosed-triple"),
    pytest.param("{{! note", "The {{! on line 1 is never closed.", id="unclosed-comment"),
    pytest.param("{{> header}}", "{{>header}}: partials are not supported.", id="partial"),
    pytest.param(
        "{{#> layout}}{{/layout}}",
        "{{#> layout}}: partial blocks and decorators are not supported.",
        id="partial-block",
    ),
    pytest.param(
        "{{#if (eq a b)}}x{{/if}}",
        "{{#if (eq a b)}}: subexpressions are not supported; compare with backticks instead.",
        id="subexpression",
    ),
    pytest.param("{{x a=b}}", "{{x a=b}}: hash arguments (name=value) are not supported.", id="hash"),
    pytest.param(
        "{{#each l as |x|}}{{/each}}",
        "{{#each l as |x|}}: block parameters (as |x|) are not supported.",
        id="params",
    ),
    pytest.param(
        "{{lookup a b}}", "{{lookup a b}}: lookup is not a helper Mandrill provides.", id="unknown-helper"
    ),
    pytest.param(
        "{{#list a}}{{/list}}",
        "{{#list a}}: list is not a block helper Mandrill provides.",
        id="unknown-block",
    ),
    pytest.param(
        "{{#upper a}}{{/upper}}",
        "{{#upper a}}: upper is an inline helper; write {{upper …}}, not a block.",
        id="inline-as-block",
    ),
    pytest.param("{{upper a b}}", "{{upper a b}}: upper takes one argument.", id="arity"),
    pytest.param('{{date "d" "m"}}', '{{date "d" "m"}}: date takes at most one argument.', id="arity-date"),
    pytest.param("{{#if}}{{/if}}", "{{#if}}: if takes exactly one argument.", id="if-no-argument"),
    pytest.param("{{#with a b}}{{/with}}", "{{#with a b}}: with takes exactly one argument.", id="with-two"),
    pytest.param(
        "{{#each `a > 1`}}{{/each}}",
        "{{#each `a > 1`}}: backtick comparisons work with if, unless and elseif only.",
        id="backtick-in-each",
    ),
    pytest.param(
        "{{#if `a ~ 1`}}{{/if}}",
        '{{#if `a ~ 1`}}: `a ~ 1` is not a comparison; write `name > 3` or `name == "text"` (==, !=, <, >, <=, >=).',
        id="bad-backtick",
    ),
    pytest.param(
        "{{`a > 1`}}", "{{`a > 1`}}: a backtick comparison can only be the condition of an if.", id="bt-out"
    ),
    pytest.param("{{@foo}}", "{{@foo}}: '@foo' is not a Handlebars data variable.", id="unknown-data"),
    pytest.param("{{a..b}}", "{{a..b}}: 'a..b' is not a valid path.", id="bad-path"),
    pytest.param("{{a.[b}}", "{{a.[b}}: a [segment] is never closed.", id="unclosed-segment"),
    pytest.param("{{}}", "{{}} is empty.", id="empty"),
    pytest.param("{{{{raw}}}}x{{{{/raw}}}}", "{{{{raw}}}: '{raw' is not a valid path.", id="raw-block"),
]


@pytest.mark.parametrize(("template", "message"), HANDLEBARS_REFUSALS)
def test_handlebars_refuses_a_template_that_does_not_parse(template, message):
    assert refusal(lambda: handlebars(template, {"a": 1})) == message


# --- mc:edit regions ------------------------------------------------------------------------------------

DOCUMENT = (
    "<!DOCTYPE html>\r\n"
    '<html><head><style>td { content: "</div>" }</style>\r\n'
    "<script>if (a < b && '<td mc:edit=\"fake\">') {}</script></head>\r\n"
    "<body  class=x>\n"
    '<!-- <div mc:edit="commented">c</div> -->\n'
    "<div MC:EDIT=\"header\" class='h'>Default <div>nested <div>deeper</div></div> tail</div>\n"
    "<table><tr><td mc:edit='main' style=\"a:b\">Main &nbsp; <b>bold</b></td>"
    "<td mc:edit=side>Side</td></tr></table>\n"
    '<img mc:edit="logo" src="x.png"><br/><p>&copy; 2024</p>\n'
    "</body></html>"
)


def test_regions_replace_inner_html_and_keep_everything_else():
    # when
    filled = fill_editable_regions(
        DOCUMENT,
        [
            {"name": "header", "content": "<h1>New <div>header</div></h1>"},
            {"name": "main", "content": "*|FNAME|*"},
            {"name": "unknown", "content": "ignored"},
            {"name": "logo", "content": "an img has no inner HTML"},
        ],
    )
    # then: only the two regions' inner HTML changed, every other character is the original's
    expected = DOCUMENT.replace(
        "Default <div>nested <div>deeper</div></div> tail", "<h1>New <div>header</div></h1>"
    ).replace("Main &nbsp; <b>bold</b>", "*|FNAME|*")
    assert filled == expected


@pytest.mark.parametrize(
    ("html", "content", "expected"),
    [
        pytest.param(
            '<div mc:edit="a">old</div>',
            [{"name": "a", "content": "new"}],
            '<div mc:edit="a">new</div>',
            id="double-quotes",
        ),
        pytest.param(
            "<div mc:edit='a'>old</div>",
            [{"name": "a", "content": "new"}],
            "<div mc:edit='a'>new</div>",
            id="single-quotes",
        ),
        pytest.param(
            "<div mc:edit=a>old</div>",
            [{"name": "a", "content": "new"}],
            "<div mc:edit=a>new</div>",
            id="unquoted",
        ),
        pytest.param(
            '<DIV Mc:Edit="a">old</DIV>',
            [{"name": "a", "content": "new"}],
            '<DIV Mc:Edit="a">new</DIV>',
            id="upper-case",
        ),
        pytest.param(
            '<td mc:edit="a"><td>x</td></td>',
            [{"name": "a", "content": "n"}],
            '<td mc:edit="a">n</td>',
            id="same-tag-nested",
        ),
        pytest.param(
            '<div mc:edit="a">old</div>', [], '<div mc:edit="a">old</div>', id="not-named-keeps-default"
        ),
        pytest.param('<div mc:edit="a">old</div>', None, '<div mc:edit="a">old</div>', id="no-content"),
        pytest.param(
            '<div mc:edit="a">old</div>',
            [{"name": "a", "content": None}],
            '<div mc:edit="a"></div>',
            id="null-content",
        ),
        pytest.param(
            '<p mc:edit="a">1</p><p mc:edit="a">2</p>',
            [{"name": "a", "content": "n"}],
            '<p mc:edit="a">n</p><p mc:edit="a">n</p>',
            id="same-name-twice",
        ),
        pytest.param(
            '<p mc:edit="a">1</p>',
            [{"name": "a", "content": "x"}, {"name": "a", "content": "y"}],
            '<p mc:edit="a">y</p>',
            id="last-content-wins",
        ),
        pytest.param(
            '<div mc:edit="o">a<div mc:edit="i">b</div>c</div>',
            [{"name": "i", "content": "I"}],
            '<div mc:edit="o">a<div mc:edit="i">I</div>c</div>',
            id="inner-region",
        ),
        pytest.param(
            '<div mc:edit="o">a<div mc:edit="i">b</div>c</div>',
            [{"name": "o", "content": "O"}, {"name": "i", "content": "I"}],
            '<div mc:edit="o">O</div>',
            id="outer-region-wins",
        ),
        pytest.param(
            '<div mc:edit="a"/><i>x</i>',
            [{"name": "a", "content": "n"}],
            '<div mc:edit="a"/><i>x</i>',
            id="self-closed",
        ),
        pytest.param(
            '<p mc:edit="é">1</p>', [{"name": "é", "content": "ü ✓"}], '<p mc:edit="é">ü ✓</p>', id="unicode"
        ),
        pytest.param(
            "no regions </div> at all", [{"name": "a", "content": "n"}], "no regions </div> at all", id="none"
        ),
    ],
)
def test_regions(html, content, expected):
    assert fill_editable_regions(html, content) == expected


@pytest.mark.parametrize(
    ("html", "content", "message"),
    [
        pytest.param('<div mc:edit="a">x', [], 'The mc:edit region "a" is never closed.', id="unclosed"),
        pytest.param(
            '<div mc:edit="b"><div>x</div>', [], 'The mc:edit region "b" is never closed.', id="unclosed-2"
        ),
        pytest.param(
            "<p>", {"a": "b"}, "template_content must be an array of {name, content} objects.", id="shape"
        ),
        pytest.param(
            "<p>", ["a"], "template_content[0] must be an object with a name and a content.", id="entry"
        ),
        pytest.param("<p>", [{"content": "x"}], "template_content[0].name must be a string.", id="no-name"),
        pytest.param(
            "<p>", [{"name": "a", "content": 3}], "template_content[0].content must be a string.", id="number"
        ),
        pytest.param(b"<p>", [], "The template's HTML must be a string.", id="bytes"),
    ],
)
def test_regions_refuse_malformed_input(html, content, message):
    assert refusal(lambda: fill_editable_regions(html, content)) == message


def test_regions_then_merge_as_mandrill_does():
    # given a template whose region content carries merge tags
    html = fill_editable_regions('<div mc:edit="main">x</div>', [{"name": "main", "content": "Hi *|NAME|*"}])
    # when / then
    assert mailchimp(html, {"name": "Ann"}) == '<div mc:edit="main">Hi Ann</div>'


# --- merge_vars_for -------------------------------------------------------------------------------------


def test_recipient_vars_override_global_vars_case_insensitively():
    merged = merge_vars_for(
        global_vars=[{"name": "FNAME", "content": "Friend"}, {"name": "plan", "content": "free"}],
        recipient_vars=[
            {"rcpt": "Ann@Example.com", "vars": [{"name": "fname", "content": "Ann"}]},
            {"rcpt": "bob@example.com", "vars": [{"name": "FNAME", "content": "Bob"}]},
            {"rcpt": "ann@example.com", "vars": [{"name": "ORDER", "content": {"total": 5}}]},
        ],
        recipient="ann@example.COM",
    )
    assert merged == {"plan": "free", "fname": "Ann", "ORDER": {"total": 5}}
    assert mailchimp("*|FNAME|* *|PLAN|*", merged) == "Ann free"
    assert handlebars("{{FNAME}} {{order.total}} {{Plan}}", merged) == "Ann 5 free"


@pytest.mark.parametrize(
    ("global_vars", "recipient_vars", "expected"),
    [
        pytest.param(None, None, {}, id="nothing"),
        pytest.param([], [], {}, id="empty"),
        pytest.param([{"name": "A", "content": 1}], None, {"A": 1}, id="global-only"),
        pytest.param(
            None, [{"rcpt": "ann@example.com", "vars": [{"name": "a"}]}], {"a": None}, id="no-content"
        ),
        pytest.param(
            [{"name": "A", "content": 1}, {"name": "a", "content": 2}], None, {"a": 2}, id="last-wins"
        ),
        pytest.param(
            [{"name": "A", "content": 1}],
            [{"rcpt": "ann@example.com", "vars": None}],
            {"A": 1},
            id="null-vars",
        ),
        pytest.param(
            [{"name": "A", "content": 1}],
            [{"rcpt": "x@example.com", "vars": [{"name": "A", "content": 2}]}],
            {"A": 1},
            id="other-recipient",
        ),
    ],
)
def test_merge_vars_for(global_vars, recipient_vars, expected):
    assert merge_vars_for(
        global_vars=global_vars, recipient_vars=recipient_vars, recipient="ann@example.com"
    ) == (expected)


@pytest.mark.parametrize(
    ("global_vars", "recipient_vars", "message"),
    [
        pytest.param(
            {"A": 1}, None, "global_merge_vars must be an array of {name, content} objects.", id="dict"
        ),
        pytest.param(
            ["A"], None, "global_merge_vars[0] must be an object with a name and a content.", id="entry"
        ),
        pytest.param(
            [{"content": 1}], None, "global_merge_vars[0].name must be a non-empty string.", id="no-name"
        ),
        pytest.param(
            [{"name": 3}], None, "global_merge_vars[0].name must be a non-empty string.", id="number"
        ),
        pytest.param(
            [{"name": ""}], None, "global_merge_vars[0].name must be a non-empty string.", id="empty"
        ),
        pytest.param(
            [{"name": "_x"}], None, 'global_merge_vars[0].name "_x" may not start with an underscore.', id="_"
        ),
        pytest.param(
            None, {"rcpt": "a"}, "merge_vars must be an array of {rcpt, vars} objects.", id="merge-dict"
        ),
        pytest.param(None, ["a"], "merge_vars[0] must be an object with rcpt and vars.", id="merge-entry"),
        pytest.param(None, [{"vars": []}], "merge_vars[0].rcpt must be an email address.", id="no-rcpt"),
        pytest.param(
            None, [{"rcpt": 1, "vars": []}], "merge_vars[0].rcpt must be an email address.", id="rcpt"
        ),
        pytest.param(
            None,
            [{"rcpt": "ann@example.com", "vars": {"A": 1}}],
            "merge_vars[0].vars must be an array of {name, content} objects.",
            id="vars-dict",
        ),
        pytest.param(
            None,
            [{"rcpt": "ann@example.com", "vars": []}, {"rcpt": "bob@example.com", "vars": [{"name": 1}]}],
            "merge_vars[1].vars[0].name must be a non-empty string.",
            id="other-recipients-checked-too",
        ),
    ],
)
def test_merge_vars_for_refuses_malformed_entries(global_vars, recipient_vars, message):
    assert (
        refusal(
            lambda: merge_vars_for(
                global_vars=global_vars, recipient_vars=recipient_vars, recipient="ann@example.com"
            )
        )
        == message
    )


def test_merge_vars_for_needs_an_address():
    assert refusal(lambda: merge_vars_for(global_vars=None, recipient_vars=None, recipient=None)) == (
        "The recipient's email must be a string."
    )


# --- Properties -----------------------------------------------------------------------------------------

FUZZ = hsettings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
KNOWN = ["FNAME", "COUNT", "PLAN", "Items"]
# Text and values without "*" or "|", so no tag can be assembled from the pieces around a tag.
plain_text = st.text(
    alphabet=st.characters(blacklist_characters="*|", blacklist_categories=["Cs"]), max_size=12
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), plain_text, st.just("3"), st.just("")
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(plain_text, children, max_size=3),
    max_leaves=8,
)
# Each name in several spellings: Mandrill's names are case-insensitive.
random_case = st.sampled_from(
    [
        spelling
        for name in [*KNOWN, "OTHER"]
        for spelling in (name, name.lower(), name.title(), name[:2].lower() + name[2:])
    ]
)
mailchimp_variables = st.dictionaries(random_case, values, max_size=5)
condition = st.tuples(
    random_case,
    st.sampled_from(["", "=", "!=", ">", "<", ">=", "<=", "=="]),
    st.sampled_from(["", "3", "a", "x y"]),
).map(lambda c: c[0] + (c[1] + c[2] if c[1] else ""))
leaf = st.one_of(
    plain_text,
    random_case.map(lambda name: f"*|{name}|*"),
    st.sampled_from(["*|CURRENT_YEAR|*", "*|DATE:d/m/Y|*", "*|MC:SUBJECT|*", "*|EMAIL|*", "*|UNSUB|*"]),
)


def mailchimp_if(children):
    branch = st.lists(children, max_size=3).map("".join)
    return st.tuples(
        st.sampled_from(["IF", "IFNOT", "if"]),
        condition,
        branch,
        st.lists(st.tuples(condition, branch), max_size=2),
        st.one_of(st.none(), branch),
    ).map(
        lambda p: (
            f"*|{p[0]}:{p[1]}|*{p[2]}"
            + "".join(f"*|ELSEIF:{c}|*{b}" for c, b in p[3])
            + (f"*|ELSE:|*{p[4]}" if p[4] is not None else "")
            + "*|END:IF|*"
        )
    )


mailchimp_templates = st.lists(st.recursive(leaf, mailchimp_if, max_leaves=8), max_size=4).map("".join)


@FUZZ
@given(template=mailchimp_templates, variables=mailchimp_variables)
def test_mailchimp_leaves_no_well_formed_tag(template, variables):
    # when a well-formed template, conditions included, is merged with any variables
    output = mailchimp(template, variables)
    # then no tag survives: every variable and standard tag was replaced, unknown names by nothing
    assert "*|" not in output


STANDARD = {
    "CURRENT_YEAR": "2024",
    "DATE:D/M/Y": "29/02/2024",
    "MC:SUBJECT": "Your order",
    "EMAIL": "ann@example.com",
    "UNSUB": "https://u.example/x1",
}


@FUZZ
@given(
    template=st.lists(leaf, max_size=8).map("".join),
    variables=st.dictionaries(random_case, st.one_of(plain_text, st.integers()), max_size=5),
)
def test_mailchimp_tags_are_replaced_by_their_values(template, variables):
    # given an independent oracle: the last spelling of a name wins, unknown names are empty
    by_name = {name.upper(): str(value) for name, value in variables.items()}
    expected = re.sub(
        r"\*\|([^|]+)\|\*",
        lambda tag: by_name.get(tag[1].upper(), STANDARD.get(tag[1].upper(), "")),
        template,
    )
    # when / then
    assert mailchimp(template, variables) == expected


# Pieces of both languages, well and badly formed, to glue together at random.
FRAGMENTS = [
    "*|",
    "|*",
    "*|A|*",
    "*|IF:A|*",
    "*|IF:A>3|*",
    "*|ELSEIF:B=x|*",
    "*|ELSE:|*",
    "*|END:IF|*",
    "*|IFNOT:B|*",
    "*|DATE:Y|*",
    "*|UNSUB:http://x|*",
    "{{",
    "}}",
    "{{{",
    "}}}",
    "{{a}}",
    "{{{a}}}",
    "{{#if a}}",
    "{{/if}}",
    "{{#each l}}",
    "{{/each}}",
    "{{else}}",
    "{{elseif b}}",
    "{{#with o}}",
    "{{/with}}",
    "{{this}}",
    "{{@index}}",
    "{{../a}}",
    "{{upper a}}",
    '{{date "Y"}}',
    "{{striptags a}}",
    "{{url a}}",
    "{{unsub a}}",
    "`",
    '"',
    "'",
    "{{#if `a > 3`}}",
    "{{!--",
    "--}}",
    "{{!",
    "~",
    "\\",
    "\\{{",
    "{{^}}",
    "{{#a}}",
    "{{/a}}",
    "{{^l}}",
    "[",
    "]",
    "(",
    ")",
    "=",
    "|",
    ".",
    "../",
    "@",
    '<div mc:edit="a">',
    "</div>",
    "<p>",
    "\n",
    " ",
    "\r\n",
]
soup = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=25).map("".join)
any_variables = st.dictionaries(st.sampled_from(["a", "A", "b", "l", "o", "name"]), values, max_size=5)


@FUZZ
@given(template=soup, variables=any_variables, language=st.sampled_from(["mailchimp", "handlebars"]))
def test_any_text_merges_or_is_refused_with_merge_error(template, variables, language):
    try:
        output = render(template, language=language, variables=variables, context=CONTEXT)
    except MergeError as error:
        assert error.message
    else:
        assert isinstance(output, str)


@FUZZ
@given(
    html=soup,
    content=st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b"]), "content": plain_text})),
)
def test_any_html_fills_or_is_refused_with_merge_error(html, content):
    try:
        filled = fill_editable_regions(html, content)
    except MergeError as error:
        assert error.message
    else:
        assert isinstance(filled, str)
        # nothing named: the document comes back as it was
        assert fill_editable_regions(html, [{"name": "none of them", "content": "x"}]) == html


json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "content", "rcpt", "vars"]), children, max_size=4)
    ),
    max_leaves=10,
)


@FUZZ
@given(global_vars=json_like, recipient_vars=json_like)
def test_any_merge_vars_give_a_dict_or_merge_error(global_vars, recipient_vars):
    try:
        merged = merge_vars_for(
            global_vars=global_vars, recipient_vars=recipient_vars, recipient="a@example.com"
        )
    except MergeError as error:
        assert error.message
    else:
        assert isinstance(merged, dict)


# --- Hostile templates: refused with MergeError, quickly ----------------------------------------------

BOUND_SECONDS = 5.0  # generous for a shared 2-core machine; measured figures are in the report
MILLION = list(range(10**6))
DEEP_IF = "*|IF:A|*" * 10**5 + "x" + "*|END:IF|*" * 10**5

HOSTILE = [
    pytest.param(
        lambda: handlebars("{{#each a}}{{#each ../a}}{{this}}{{/each}}{{/each}}", {"a": MILLION}),
        "The template does too much work to render (loops or conditions over too much data).",
        id="nested-each-over-a-million",
    ),
    pytest.param(
        lambda: handlebars("{{#each a}}{{#each ../a}}{{/each}}{{/each}}", {"a": MILLION}),
        "The template does too much work to render (loops or conditions over too much data).",
        id="nested-each-empty-body",
    ),
    pytest.param(
        lambda: handlebars(
            "{{#each a}}{{#if `../s == ../s`}}{{/if}}{{/each}}", {"a": MILLION, "s": "z" * 10**6}
        ),
        "The template does too much work to render (loops or conditions over too much data).",
        id="comparing-a-megabyte-in-a-loop",
    ),
    pytest.param(
        lambda: handlebars("{{#each a}}{{striptags ../h}}{{/each}}", {"a": MILLION, "h": "<b>" * 10**5}),
        "The template does too much work to render (loops or conditions over too much data).",
        id="striptags-in-a-loop",
    ),
    pytest.param(
        lambda: mailchimp(DEEP_IF, {"A": 1}),
        f"Conditions may be nested at most {MAX_NESTING} deep.",
        id="mailchimp-100000-nested-ifs",
    ),
    pytest.param(
        lambda: handlebars("{{#if a}}" * 10**5 + "x" + "{{/if}}" * 10**5, {"a": 1}),
        f"Blocks may be nested at most {MAX_NESTING} deep.",
        id="handlebars-100000-nested-ifs",
    ),
    pytest.param(
        lambda: mailchimp("*|X|*" * 10**4, {"X": "y" * 10**4}),
        f"The merged content would be longer than {MAX_OUTPUT_CHARS:,} characters.",
        id="mailchimp-output-over-the-bound",
    ),
    pytest.param(
        lambda: handlebars("{{#each a}}{{{../x}}}{{/each}}", {"a": MILLION, "x": "y" * 1000}),
        f"The merged content would be longer than {MAX_OUTPUT_CHARS:,} characters.",
        id="handlebars-output-over-the-bound",
    ),
    pytest.param(
        lambda: handlebars("{{#each a}}{{../a}}{{/each}}", {"a": [""] * 10**6}),
        "The template does too much work to render (loops or conditions over too much data).",
        id="printing-a-huge-list-in-a-loop",
    ),
    pytest.param(
        lambda: mailchimp("x" * (MAX_OUTPUT_CHARS + 1)),
        f"The content to merge is longer than {MAX_OUTPUT_CHARS:,} characters.",
        id="template-over-the-bound",
    ),
    pytest.param(
        lambda: mailchimp("*|" * 2_000_000),
        f"The template has more than {MAX_TAGS:,} merge tags.",
        id="mailchimp-tag-soup",
    ),
    pytest.param(
        lambda: handlebars("{{a}}" * (MAX_TAGS * 4)),
        f"The template has more than {MAX_TAGS:,} merge tags.",
        id="handlebars-tag-soup",
    ),
    pytest.param(
        lambda: handlebars("\\{{" * 1_000_000),
        f"The template has more than {MAX_TAGS:,} merge tags.",
        id="escaped-mustache-soup",
    ),
    pytest.param(
        lambda: handlebars("{{ a " * 900_000),
        "The {{ on line 1 is never closed with }}.",
        id="unclosed-mustaches",
    ),
    pytest.param(
        lambda: handlebars('{{"' + "a" * 4_000_000),
        "The {{ on line 1 is never closed with }}.",
        id="unclosed-string",
    ),
    pytest.param(
        lambda: fill_editable_regions('<div mc:edit="a">' * (MAX_TAGS - 1), []),
        'The mc:edit region "a" is never closed.',
        id="regions-nested-unclosed",
    ),
    pytest.param(
        lambda: fill_editable_regions('<p mc:edit="a"></p>' * 10**5, [{"name": "a", "content": "x" * 1000}]),
        f"The template has more than {MAX_TAGS:,} HTML tags.",
        id="regions-tag-soup",
    ),
    pytest.param(
        lambda: fill_editable_regions('<p mc:edit="a"></p>' * 10**4, [{"name": "a", "content": "x" * 1000}]),
        f"The merged content would be longer than {MAX_OUTPUT_CHARS:,} characters.",
        id="regions-output-over-the-bound",
    ),
    pytest.param(
        lambda: handlebars("{{#each a}}{{date ../f}}{{/each}}", {"a": MILLION, "f": "\\x" * 500}),
        "The template does too much work to render (loops or conditions over too much data).",
        id="long-date-format-in-a-loop",
    ),
    pytest.param(
        lambda: handlebars("{{date f}}", {"f": "Y" * 1001}),
        "A date format may be at most 1,000 characters long.",
        id="date-format-too-long",
    ),
]


@pytest.mark.parametrize(("call", "message"), HOSTILE)
def test_hostile_input_is_refused_quickly(call, message):
    started = time.perf_counter()
    assert refusal(call) == message
    assert time.perf_counter() - started < BOUND_SECONDS


def test_deep_values_and_long_paths_render_without_recursion_errors():
    deep = []
    for _ in range(10**5):
        deep = [deep]
    assert handlebars("[{{a}}]", {"a": deep}) == "[]"
    assert handlebars("[{{" + ".".join(["a"] * 10**5) + "}}]", {}) == "[]"
    assert mailchimp("[*|A|*]", {"A": deep}) == "[]"


def test_a_large_real_template_renders_within_the_bounds():
    # given a 1,000-line order: a dozen fields a line, conditions and a nested loop
    line = (
        "<tr><td>{{@index}}</td><td>{{sku}}</td><td>{{title}}</td><td>{{upper colour}}</td><td>{{size}}</td>"
        "<td>{{qty}}</td><td>{{price}}</td><td>{{#if `qty > 1`}}{{qty}} x {{price}}{{else}}-{{/if}}</td>"
        "<td>{{#each tags}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}</td><td>{{../currency}}</td></tr>\n"
    )
    items = [
        {
            "sku": f"S{i}",
            "title": f"Item {i}",
            "colour": "red",
            "size": "M",
            "qty": i % 3,
            "price": 9.5,
            "tags": ["a", "b", "c"],
        }
        for i in range(1000)
    ]
    # when
    output = handlebars(
        "<table>{{#each items}}" + line + "{{/each}}</table>", {"items": items, "currency": "EUR"}
    )
    # then
    assert output.count("<tr>") == 1000
    assert "<td>999</td><td>S999</td><td>Item 999</td><td>RED</td><td>M</td><td>0</td><td>9.5</td>" in output
    assert "<td>2 x 9.5</td><td>a, b, c</td><td>EUR</td>" in output
