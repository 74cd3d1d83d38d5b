"""Templates and merge over the API: Mandrill's templates/* calls, send-template and merge variables in
both languages, checked on the delivered MIME; the official Python client and django-anymail unchanged
but for their base URL."""

import itertools
import json
import re
from email import message_from_bytes, policy

import mailchimp_transactional
import pytest
from django.core.mail import EmailMessage
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from mailchimp_transactional.api_client import ApiClientError

from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import Message
from tests.api.test_real_clients import _use_anymail
from tests.api.test_wire_format import assert_error
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db(transaction=True)

CODE = '<h1 mc:edit="title">Default title</h1><p>Hello *|FNAME|*, *|IF:VIP|*welcome back*|ELSE:|*welcome*|END:IF|*.</p>'


@pytest.fixture
def keys(db):
    master = MasterFactory(public_id="agency")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    shop, shop_owner = subaccount_with_owner(master, public_id="shop")
    stranger = MasterFactory(public_id="stranger")
    stranger_owner = MembershipFactory(account=stranger, role=Membership.Role.OWNER).user
    return {
        "master": create_api_key(actor=owner, account=master, label="t")[1],
        "shop": create_api_key(actor=shop_owner, account=shop, label="t")[1],
        "stranger": create_api_key(actor=stranger_owner, account=stranger, label="t")[1],
    }


def _api(client, path, body):
    return client.post(f"/api/1.0/{path}.json", json.dumps(body), content_type="application/json")


def _delivered(sink):
    return {
        e.rcpt_tos[0]: message_from_bytes(e.original_content or e.content, policy=policy.default)
        for e in sink.received
    }


def test_the_templates_calls(client, keys):
    key = keys["master"]
    added = _api(client, "templates/add", {"key": key, "name": "Welcome Mail", "code": CODE, "subject": "Hi *|FNAME|*",
                                           "from_email": "news@agency.test", "labels": ["onboarding"], "publish": False}).json()  # fmt: skip
    assert (added["slug"], added["publish_code"], added["labels"]) == ("welcome-mail", None, ["onboarding"])
    assert_error(_api(client, "templates/add", {"key": key, "name": "Welcome Mail"}), "Invalid_Template")
    published = _api(client, "templates/publish", {"key": key, "name": "welcome-mail"}).json()
    assert published["publish_code"] == CODE and published["published_at"]
    updated = _api(
        client, "templates/update", {"key": key, "name": "welcome-mail", "subject": "Hey", "publish": False}
    ).json()
    assert (updated["subject"], updated["publish_subject"]) == ("Hey", "Hi *|FNAME|*")
    assert [
        t["slug"] for t in _api(client, "templates/list", {"key": key, "label": "onboarding"}).json()
    ] == ["welcome-mail"]
    assert _api(client, "templates/list", {"key": key, "label": "other"}).json() == []
    rendered = _api(client, "templates/render", {"key": key, "template_name": "welcome-mail",
                                                 "template_content": [{"name": "title", "content": "Hi!"}],
                                                 "merge_vars": [{"name": "fname", "content": "Ana"}]}).json()  # fmt: skip
    assert rendered["html"] == '<h1 mc:edit="title">Hi!</h1><p>Hello Ana, welcome.</p>'
    assert _api(client, "templates/time-series", {"key": key, "name": "welcome-mail"}).json() == []
    assert_error(
        _api(client, "templates/info", {"key": keys["stranger"], "name": "welcome-mail"}), "Unknown_Template"
    )
    deleted = _api(client, "templates/delete", {"key": key, "name": "welcome-mail"}).json()
    assert deleted["slug"] == "welcome-mail"
    assert_error(_api(client, "templates/info", {"key": key, "name": "welcome-mail"}), "Unknown_Template")


def test_send_template_merges_per_recipient_in_subject_html_and_text(client, keys, smtp_sink):
    key = keys["master"]
    _api(client, "templates/add", {"key": key, "name": "Welcome", "code": CODE, "subject": "Hi *|FNAME|*",
                                   "text": "Hello *|FNAME|*", "from_email": "news@agency.test"})  # fmt: skip
    message = {"to": [{"email": "ana@example.test"}, {"email": "bo@example.test"}],
               "global_merge_vars": [{"name": "FNAME", "content": "friend"}],
               "merge_vars": [{"rcpt": "ana@example.test", "vars": [{"name": "fname", "content": "Ana"}, {"name": "VIP", "content": "yes"}]}]}  # fmt: skip
    results = _api(client, "messages/send-template", {"key": key, "template_name": "welcome", "message": message,
                                                      "template_content": [{"name": "title", "content": "News"}]}).json()  # fmt: skip
    assert {r["status"] for r in results} == {"queued"}
    delivered = _delivered(smtp_sink)
    ana, bo = delivered["ana@example.test"], delivered["bo@example.test"]
    assert ana["Subject"] == "Hi Ana" and bo["Subject"] == "Hi friend"
    assert "Hello Ana, welcome back." in ana.get_body(("html",)).get_content()
    assert "Hello friend, welcome." in bo.get_body(("html",)).get_content()
    assert '<h1 mc:edit="title">News</h1>' in ana.get_body(("html",)).get_content()
    assert ana.get_body(("plain",)).get_content().strip() == "Hello Ana"
    assert "*|" not in ana.as_string() and Message.objects.filter(template="welcome").count() == 2


def test_handlebars_with_escaping_and_each(client, keys, smtp_sink):
    message = {"from_email": "news@agency.test", "subject": "{{upper first}}", "to": [{"email": "r@example.test"}],
               "html": "<p>{{name}} {{{raw}}}</p><ul>{{#each items}}<li>{{this}}</li>{{/each}}</ul>",
               "merge_language": "handlebars",
               "global_merge_vars": [{"name": "first", "content": "bo"}, {"name": "name", "content": "<b>Bo</b>"}, {"name": "raw", "content": "<i>ok</i>"},
                                     {"name": "items", "content": ["a", "b"]}]}  # fmt: skip
    assert (
        _api(client, "messages/send", {"key": keys["master"], "message": message}).json()[0]["status"]
        == "queued"
    )
    mime = _delivered(smtp_sink)["r@example.test"]
    assert mime["Subject"] == "BO"
    assert (
        mime.get_body(("html",)).get_content().strip()
        == "<p>&lt;b&gt;Bo&lt;/b&gt; <i>ok</i></p><ul><li>a</li><li>b</li></ul>"
    )


def test_merge_tags_are_left_alone_without_merge_and_a_broken_template_is_refused(client, keys, smtp_sink):
    plain = {"from_email": "news@agency.test", "text": "Price *|PRICE|*", "to": [{"email": "r@example.test"}]}
    _api(client, "messages/send", {"key": keys["master"], "message": plain})
    assert "*|PRICE|*" in _delivered(smtp_sink)["r@example.test"].get_body(("plain",)).get_content()
    broken = {"from_email": "news@agency.test", "html": "{{#each items}}never closed", "merge_language": "handlebars",
              "merge": True, "to": [{"email": "s@example.test"}]}  # fmt: skip
    body = assert_error(
        _api(client, "messages/send", {"key": keys["master"], "message": broken}), "ValidationError"
    )
    assert "could not be merged" in body["message"]
    assert not Message.objects.filter(to_email="s@example.test").exists()


def test_a_shared_template_is_usable_by_the_chosen_subaccount_only(client, keys):
    from mailing import templates as service
    from mailing.models import Template

    _api(
        client,
        "templates/add",
        {"key": keys["master"], "name": "Reset", "code": "<p>reset</p>", "from_email": "n@agency.test"},
    )
    message = {"to": [{"email": "r@example.test"}]}
    assert_error(
        _api(
            client,
            "messages/send-template",
            {"key": keys["shop"], "template_name": "reset", "message": message},
        ),
        "Unknown_Template",
    )
    template = Template.objects.get(slug="reset")
    owner = template.account.memberships.first().user
    service.share_template(
        actor=owner, master=template.account, name="reset", subaccount_ids=[], all_subaccounts=True
    )
    [sent] = _api(
        client, "messages/send-template", {"key": keys["shop"], "template_name": "reset", "message": message}
    ).json()
    assert sent["status"] == "queued" and Message.objects.get().account.public_id == "shop"
    assert_error(
        _api(
            client,
            "messages/send-template",
            {"key": keys["stranger"], "template_name": "reset", "message": message},
        ),
        "Unknown_Template",
    )


def test_the_official_python_client_templates_merge_and_scheduling(live_server, keys):
    official = mailchimp_transactional.Client(keys["master"])
    official.api_client.host = f"{live_server.url}/api/1.3"
    official.templates.add({"name": "Order", "code": "<p>Order *|ORDER|*</p>", "subject": "Order *|ORDER|*",
                            "from_email": "shop@agency.test", "publish": True})  # fmt: skip
    assert official.templates.render({"template_name": "order", "template_content": [],
                                      "merge_vars": [{"name": "ORDER", "content": "42"}]})["html"] == "<p>Order 42</p>"  # fmt: skip
    [sent] = official.messages.send_template({"template_name": "order", "template_content": [],
                                              "message": {"to": [{"email": "r@example.test"}], "global_merge_vars": [{"name": "order", "content": "7"}]}})  # fmt: skip
    assert sent["status"] == "queued" and Message.objects.get(public_id=sent["_id"]).subject == "Order 7"
    [later] = official.messages.send({"message": {"from_email": "shop@agency.test", "text": "x", "to": [{"email": "l@example.test"}]},
                                      "send_at": "2099-01-01 00:00:00"})  # fmt: skip
    assert later["status"] == "scheduled"
    assert [s["_id"] for s in official.messages.list_scheduled({})] == [later["_id"]]
    official.messages.cancel_scheduled({"id": later["_id"]})
    emptied = official.messages.list_scheduled({})  # the client hands back the raw response for an empty body
    assert (emptied if isinstance(emptied, list) else emptied.json()) == []
    with pytest.raises(ApiClientError) as unknown:
        official.templates.info({"name": "nope"})
    assert unknown.value.text["name"] == "Unknown_Template"


def test_django_anymail_sends_a_template_with_merge_data(live_server, keys, settings):
    official = mailchimp_transactional.Client(keys["master"])
    official.api_client.host = f"{live_server.url}/api/1.3"
    official.templates.add({"name": "Hello", "code": "<p>Hi *|NAME|* from *|TEAM|*</p>", "subject": "Hello",
                            "from_email": "team@agency.test"})  # fmt: skip
    _use_anymail(settings, keys["master"], live_server)
    email = EmailMessage(to=["a@example.test", "b@example.test"], from_email="team@agency.test")
    email.template_id = "hello"
    email.merge_data = {"a@example.test": {"NAME": "Ana"}, "b@example.test": {"NAME": "Bo"}}
    email.merge_global_data = {"TEAM": "Agency"}
    email.merge_metadata = {"a@example.test": {"order": "1"}, "b@example.test": {"order": "2"}}
    email.send(using="mandrill")
    assert email.anymail_status.status == {"queued"}
    stored = {m.to_email: m for m in Message.objects.all()}
    assert stored["a@example.test"].html == "<p>Hi Ana from Agency</p>"
    assert stored["b@example.test"].html == "<p>Hi Bo from Agency</p>" and stored[
        "b@example.test"
    ].metadata == {"order": "2"}


def test_the_old_mandrill_package_sends_templates_merges_and_schedules(live_server, keys, monkeypatch):
    import mandrill

    monkeypatch.setattr(mandrill, "ROOT", f"{live_server.url}/api/1.0/")
    client = mandrill.Mandrill(keys["master"])
    client.templates.add(
        name="Receipt", from_email="shop@agency.test", subject="Receipt *|N|*", code="<p>*|N|*</p>"
    )
    assert client.templates.render("receipt", [], [{"name": "N", "content": "9"}])["html"] == "<p>9</p>"
    [sent] = client.messages.send_template(
        "receipt",
        [],
        {
            "to": [{"email": "r@example.test"}],
            "merge_vars": [{"rcpt": "r@example.test", "vars": [{"name": "n", "content": "5"}]}],
        },
    )
    assert sent["status"] == "queued" and Message.objects.get(public_id=sent["_id"]).subject == "Receipt 5"
    [later] = client.messages.send({"from_email": "shop@agency.test", "text": "x", "to": [{"email": "l@example.test"}]},
                                   send_at="2099-01-01 00:00:00")  # fmt: skip
    assert later["status"] == "scheduled"
    assert client.messages.cancel_scheduled(later["_id"])["_id"] == later["_id"]
    with pytest.raises(mandrill.UnknownTemplateError):
        client.templates.info("nope")


@pytest.mark.filterwarnings("ignore:The internal API sanitize_address")
def test_djrill_sends_a_template_with_merge_vars(live_server, keys, settings, smtp_sink):
    """djrill, Mandrill's Django backend before django-anymail replaced it, still in older projects: its
    `template_name`, `template_content` and `merge_vars` attributes reach messages/send-template."""
    from djrill.mail.backends.djrill import DjrillBackend

    official = mailchimp_transactional.Client(keys["master"])
    official.api_client.host = f"{live_server.url}/api/1.3"
    official.templates.add({"name": "Welcome", "code": '<h1 mc:edit="title">Hi</h1><p>*|FNAME|*</p>',
                            "subject": "Welcome *|FNAME|*", "from_email": "team@agency.test"})  # fmt: skip
    settings.MANDRILL_API_KEY = keys["master"]
    settings.MANDRILL_API_URL = f"{live_server.url}/api/1.0"
    email = EmailMessage(to=["ana@example.test"], from_email="team@agency.test")
    email.template_name = "welcome"
    email.template_content = {"title": "Welcome aboard"}
    email.merge_vars = {"ana@example.test": {"FNAME": "Ana"}}
    email.tags = ["onboarding"]
    assert DjrillBackend().send_messages([email]) == 1
    assert email.mandrill_response[0]["status"] == "queued"
    delivered = _delivered(smtp_sink)["ana@example.test"]
    assert delivered["Subject"] == "Welcome Ana"
    html = delivered.get_body(("html",)).get_content()
    assert ">Welcome aboard</h1>" in html and "<p>Ana</p>" in html


# Pieces of templates that mix well-formed tags, conditionals and stray delimiters with plain text.
NAMES = ["FNAME", "CITY", "ORDER"]
_piece = st.one_of(
    st.text(alphabet="ab <>&é\n", max_size=6),
    st.sampled_from(NAMES).map(lambda n: f"*|{n}|*"),
    st.sampled_from(NAMES).map(lambda n: f"*|IF:{n}|*yes*|ELSE:|*no*|END:IF|*"),
    st.sampled_from(["*|", "|*", "*|END:IF|*", "*|ELSE:|*", "*|IF:FNAME|*", "*|CURRENT_YEAR|*"]),
)
_templates = st.lists(_piece, max_size=8).map("".join)
_values = st.dictionaries(st.sampled_from(NAMES), st.text(alphabet="xyz ÿ<", max_size=5), max_size=3)
_addresses = itertools.count()
# Read as Mailchimp's merge language reads text: left to right, one tag at a time, so "*|*|*|FNAME|*"
# is the odd tag "*|*|*" followed by text, and holds no FNAME tag (nor does it after merging).
MERGE_TAG = re.compile(r"\*\|([^|]{1,500})\|\*")


# The template's own tags. Text around a tag can spell a new one once the tag is filled ("*|" before a
# conditional that renders "no", "|*" after it: "*|no|*"); that is the sender's text, not a tag left
# unfilled, since tags are read once, left to right (as Mailchimp reads them).
OWN_TAG = re.compile(rf"(?:{'|'.join(NAMES)}|CURRENT_YEAR)|(?:IF|ELSEIF|ELSE|END)(?::.*)?")


def _unfilled_tags(text: str) -> list[str]:
    return [m.group(0) for m in MERGE_TAG.finditer(text) if OWN_TAG.fullmatch(m.group(1))]


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=_templates, html=_templates, values=_values)
@example(subject="", html="*|*|*|FNAME|*", values={})
@example(subject="", html="*|*|IF:FNAME|*yes*|ELSE:|*no*|END:IF|*|*", values={})  # spells "*|no|*"
@example(subject="*|*|FNAME|*|*", html="x", values={"FNAME": "xyz"})  # spells "*|xyz|*"
def test_merge_never_delivers_an_unrendered_message(client, keys, smtp_sink, subject, html, values):
    """Whatever the template, the call either queues mail with every well-formed tag filled, in the
    subject and the HTML that reach the receiving server, or is refused and nothing is stored."""
    address = f"r{next(_addresses)}@example.test"
    message = {"from_email": "news@agency.test", "subject": subject or "s", "html": html or "x", "merge": True,
               "to": [{"email": address}], "global_merge_vars": [{"name": k, "content": v} for k, v in values.items()]}  # fmt: skip
    response = _api(client, "messages/send", {"key": keys["master"], "message": message})
    answer = response.json()  # Mandrill answers every error with HTTP 500 and its error object
    if isinstance(answer, dict):
        assert answer["name"] == "ValidationError" and "could not be merged" in answer["message"]
        assert not Message.objects.filter(to_email=address).exists()
        return
    assert answer[0]["status"] == "queued"
    delivered = _delivered(smtp_sink)[address]
    assert _unfilled_tags(str(delivered["Subject"])) == []
    html_part = delivered.get_body(("html",))  # a template that merged to nothing leaves no HTML part
    assert html_part is None or _unfilled_tags(html_part.get_content()) == []
