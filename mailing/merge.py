"""Mandrill's merge languages: the engine that personalises subjects, bodies and templates.

Pure functions, no database:

- `merge_vars_for` gives one recipient's variables: the message's `global_merge_vars` overlaid by that
  recipient's `merge_vars`.
- `fill_editable_regions` injects `template_content` into a template's `mc:edit` regions.
- `render` evaluates the Mailchimp merge language (`*|NAME|*`, `*|IF:…|*`) or Mandrill's Handlebars.

Mandrill's order is regions first, then merge tags, so tags inside injected content are merged too.

Templates and variables come from customers, so the input may be hostile. Parsing takes time linear in
the template's length, and blocks nest at most `MAX_NESTING` deep. Evaluation has a budget of
`MAX_STEPS` steps, and output is capped at `MAX_OUTPUT_CHARS`. Any refusal is a `MergeError` whose
message can go back to the client (the API answers with Mandrill's `ValidationError`). Template text is
never compiled or evaluated as Python.
"""

import calendar
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from math import isfinite
from typing import Any
from urllib.parse import quote, quote_plus

MAILCHIMP = "mailchimp"
HANDLEBARS = "handlebars"

MAX_OUTPUT_CHARS = 5_000_000
# A step is one node evaluated, one path segment, half a loop iteration, 16 characters of text
# compared or transformed, or 2 characters of a date format: each costs about a microsecond. A
# 1,000-line order with a dozen fields a line takes ~50,000 steps; the whole budget, under a second.
MAX_STEPS = 500_000
MAX_NESTING = 100
# Parsing costs ~5-10 µs a tag (merge tags, and HTML tags when filling regions). Mail longer than
# 102 KB is clipped by Gmail, and that is a few thousand tags.
MAX_TAGS = 50_000
MAX_DATE_FORMAT_CHARS = 1_000


class MergeError(Exception):
    """Content that cannot be merged. `message` is one sentence the client can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MergeContext:
    """What Mandrill's standard tags read, for one recipient of one message.

    `subject` is the merged subject, used by `*|MC:SUBJECT|*`. `now` is used by `*|CURRENT_YEAR|*`,
    `*|DATE:…|*` and `{{date}}`. When it is missing the current time is used. A naive `now` counts
    as UTC. `unsubscribe_url` is the recipient's unsubscribe link, used by `*|UNSUB|*` and `{{unsub}}`.
    With a redirect (`*|UNSUB:https://…|*`), the link gets it as its `redirect` query parameter. When
    no link is given, these tags render as an empty string.
    """

    subject: str = ""
    recipient_email: str = ""
    now: datetime | None = None
    unsubscribe_url: str = ""


# --- Variables --------------------------------------------------------------------------------------


def merge_vars_for(
    *, global_vars: list[dict] | None, recipient_vars: list[dict] | None, recipient: str
) -> dict[str, Any]:
    """One recipient's merge variables: `global_merge_vars` overlaid by this recipient's `merge_vars`.

    Names match case-insensitively, as in Mandrill. When a recipient's var overrides a global one, the
    recipient's spelling of the name is kept (`render` matches names case-insensitively anyway).
    `rcpt` matches the recipient's address case-insensitively. Several entries for the same recipient
    apply in order. A `content` of null is kept as None, meaning "no value".

    Raises MergeError when a list or an entry has the wrong type. Also raises it for a missing or empty
    name, and for a name that starts with `_` (Mandrill reserves those).
    """
    if not isinstance(recipient, str):
        raise MergeError("The recipient's email must be a string.")
    merged: dict[str, Any] = {}
    spelling: dict[str, str] = {}  # upper-cased name -> the key it is stored under in `merged`

    _overlay(global_vars, "global_merge_vars", merged, spelling)
    if recipient_vars is None:
        return merged
    if not isinstance(recipient_vars, list):
        raise MergeError("merge_vars must be an array of {rcpt, vars} objects.")
    address = recipient.strip().lower()
    for position, entry in enumerate(recipient_vars):
        if not isinstance(entry, Mapping):
            raise MergeError(f"merge_vars[{position}] must be an object with rcpt and vars.")
        rcpt = entry.get("rcpt")
        if not isinstance(rcpt, str):
            raise MergeError(f"merge_vars[{position}].rcpt must be an email address.")
        # Other recipients' entries are checked too (into a scratch dict), so a malformed call fails
        # the same way whichever recipient is being merged.
        if rcpt.strip().lower() == address:
            _overlay(entry.get("vars"), f"merge_vars[{position}].vars", merged, spelling)
        else:
            _overlay(entry.get("vars"), f"merge_vars[{position}].vars", {}, {})
    return merged


def _overlay(entries: Any, where: str, merged: dict[str, Any], spelling: dict[str, str]) -> None:
    """Lay `entries` ([{name, content}], from the field `where`) over `merged`. `spelling` maps each
    upper-cased name to the key it is stored under, so a later spelling replaces an earlier one."""
    if entries is None:
        return
    if not isinstance(entries, list):
        raise MergeError(f"{where} must be an array of {{name, content}} objects.")
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise MergeError(f"{where}[{position}] must be an object with a name and a content.")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise MergeError(f"{where}[{position}].name must be a non-empty string.")
        if name.startswith("_"):
            raise MergeError(f'{where}[{position}].name "{name}" may not start with an underscore.')
        folded = name.upper()
        if folded in spelling:
            del merged[spelling[folded]]
        spelling[folded] = name
        merged[name] = entry.get("content")


# --- Shared evaluation ------------------------------------------------------------------------------


class _Budget:
    """Work and output spent by one `render` call. Both are checked as the work is done, never after."""

    __slots__ = ("chars", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.chars = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise MergeError(
                "The template does too much work to render (loops or conditions over too much data)."
            )

    def charge(self, text: str) -> str:
        """Count the cost of comparing or transforming `text`, and return it."""
        self.step(1 + (len(text) >> 4))
        return text

    def emit(self, out: list[str], text: str) -> None:
        if text:
            self.chars += len(text)
            if self.chars > MAX_OUTPUT_CHARS:
                raise MergeError(f"The merged content would be longer than {MAX_OUTPUT_CHARS:,} characters.")
            out.append(text)


def _text(value: Any, budget: _Budget, depth: int = 0) -> str:
    """A merge value as text, spelt as JSON spells it (`true`, `3`, `2.5`).

    An array renders as its items joined by commas, as in Handlebars.js. An object has no text form,
    so it renders empty.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # past Python's digit limit for int -> str
            raise MergeError("A merge value is a number too long to print.") from None
    if isinstance(value, float):
        if isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, list | tuple):
        if depth >= 20:  # deeper arrays only come from hostile input; the cut keeps recursion shallow
            return ""
        budget.step(len(value))
        return ",".join(_text(item, budget, depth + 1) for item in value)
    return ""


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def _number(value: Any) -> Decimal | None:
    """The value as an exact number when it is one (or a string that spells one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if isfinite(value) else None
    # The length cap keeps a megabyte of digits (or of spaces) from costing anything.
    if isinstance(value, str) and len(value) <= 100:
        stripped = value.strip()
        if len(stripped) <= 64 and _NUMBER.fullmatch(stripped):
            return Decimal(stripped)
    return None


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
    "!==": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _compare(left: Any, op: str, right: Any, budget: _Budget) -> bool:
    """Compare numerically when both sides are numbers, else as text (case-sensitive).

    A missing value equals nothing and orders with nothing: only "not equal" is true for it.
    """
    if left is None or right is None:
        return op in ("!=", "!==")
    left_number, right_number = _number(left), _number(right)
    if left_number is not None and right_number is not None:
        return _COMPARISONS[op](left_number, right_number)
    return _COMPARISONS[op](budget.charge(_text(left, budget)), budget.charge(_text(right, budget)))


def _now(context: MergeContext) -> datetime:
    now = context.now or datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _unsubscribe_link(context: MergeContext, redirect: str) -> str:
    if not context.unsubscribe_url or not redirect:
        return context.unsubscribe_url
    separator = "&" if "?" in context.unsubscribe_url else "?"
    return f"{context.unsubscribe_url}{separator}redirect={quote(redirect, safe='', errors='replace')}"


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _ordinal_suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _utc_offset(moment: datetime, colon: bool) -> str:
    seconds = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


# PHP's date() letters: Mandrill is a PHP service, and its documented formats ("d/m/Y", "Y-m-d") are
# PHP's. Other characters are printed as they are; a backslash prints the next one literally.
_PHP_DATE: dict[str, Callable[[datetime], str]] = {
    "d": lambda m: f"{m.day:02d}",
    "D": lambda m: _WEEKDAYS[m.weekday()][:3],
    "j": lambda m: str(m.day),
    "l": lambda m: _WEEKDAYS[m.weekday()],
    "N": lambda m: str(m.isoweekday()),
    "S": lambda m: _ordinal_suffix(m.day),
    "w": lambda m: str(m.isoweekday() % 7),
    "z": lambda m: str(m.timetuple().tm_yday - 1),
    "W": lambda m: f"{m.isocalendar().week:02d}",
    "F": lambda m: _MONTHS[m.month - 1],
    "m": lambda m: f"{m.month:02d}",
    "M": lambda m: _MONTHS[m.month - 1][:3],
    "n": lambda m: str(m.month),
    "t": lambda m: str(calendar.monthrange(m.year, m.month)[1]),
    "L": lambda m: "1" if calendar.isleap(m.year) else "0",
    "o": lambda m: str(m.isocalendar().year),
    "Y": lambda m: str(m.year),
    "y": lambda m: f"{m.year % 100:02d}",
    "a": lambda m: "am" if m.hour < 12 else "pm",
    "A": lambda m: "AM" if m.hour < 12 else "PM",
    "g": lambda m: str(m.hour % 12 or 12),
    "G": lambda m: str(m.hour),
    "h": lambda m: f"{m.hour % 12 or 12:02d}",
    "H": lambda m: f"{m.hour:02d}",
    "i": lambda m: f"{m.minute:02d}",
    "s": lambda m: f"{m.second:02d}",
    "u": lambda m: f"{m.microsecond:06d}",
    "v": lambda m: f"{m.microsecond // 1000:03d}",
    "e": lambda m: m.tzname() or "UTC",
    "T": lambda m: m.tzname() or "UTC",
    "O": lambda m: _utc_offset(m, colon=False),
    "P": lambda m: _utc_offset(m, colon=True),
    "Z": lambda m: str(int(m.utcoffset().total_seconds())),  # type: ignore[union-attr]
    "c": lambda m: _php_date("Y-m-d\\TH:i:sP", m),
    "r": lambda m: _php_date("D, d M Y H:i:s O", m),
    "U": lambda m: str(int(m.timestamp())),
}


def _php_date(format_: str, moment: datetime, budget: _Budget | None = None) -> str:
    if len(format_) > MAX_DATE_FORMAT_CHARS:
        raise MergeError(f"A date format may be at most {MAX_DATE_FORMAT_CHARS:,} characters long.")
    if budget is not None:
        budget.step(1 + len(format_) // 2)
    pieces = []
    position = 0
    while position < len(format_):
        char = format_[position]
        if char == "\\" and position + 1 < len(format_):
            pieces.append(format_[position + 1])
            position += 2
            continue
        spell = _PHP_DATE.get(char)
        pieces.append(spell(moment) if spell else char)
        position += 1
    return "".join(pieces)


# --- render -----------------------------------------------------------------------------------------


def render(
    text: str, *, language: str, variables: dict[str, Any], context: MergeContext | None = None
) -> str:
    """Merge `variables` into `text` in Mandrill's `language`, "mailchimp" or "handlebars".

    Variable names match case-insensitively. In Handlebars an exact match is tried first, and only the
    top-level names fold case; keys inside objects match exactly. A missing variable renders as an
    empty string. Mailchimp values go in as given, without escaping. Handlebars escapes `{{x}}` for
    HTML and leaves `{{{x}}}` raw.

    Raises MergeError for an unknown language, a template that does not parse, or blocks nested deeper
    than MAX_NESTING. It also raises for a render that would take more than MAX_STEPS steps or produce
    more than MAX_OUTPUT_CHARS characters.
    """
    if not isinstance(text, str):
        raise MergeError("The content to merge must be a string.")
    if not isinstance(variables, Mapping):
        raise MergeError("The merge variables must be an object of names and values.")
    for name in variables:
        if not isinstance(name, str):
            raise MergeError("Merge variable names must be strings.")
    if len(text) > MAX_OUTPUT_CHARS:
        raise MergeError(f"The content to merge is longer than {MAX_OUTPUT_CHARS:,} characters.")
    context = context or MergeContext()
    if language == MAILCHIMP:
        return _mailchimp_render(text, variables, context)
    if language == HANDLEBARS:
        return _handlebars_render(text, variables, context)
    raise MergeError(f'merge_language must be "{MAILCHIMP}" or "{HANDLEBARS}".')


# --- The Mailchimp merge language -------------------------------------------------------------------
#
# The tree is plain lists and tuples: str (literal text); ("var", NAME); ("std", kind, argument);
# ["if", [[condition, body], …], else_body or None]. A condition is (negated, NAME, operator or None,
# operand).

# A tag is at most 500 characters and holds no "|". So each "*|" looks no further than the next "|",
# and a template full of unclosed "*|" still scans in linear time.
_MC_TAG = re.compile(r"\*\|([^|]{1,500})\|\*")
_MC_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_MC_KEYWORD = re.compile(r"([A-Za-z_]+):(.*)", re.ASCII | re.DOTALL)
_MC_CONDITION = re.compile(r"\s*([A-Za-z0-9_]+)\s*(?:(!=|<=|>=|==|=|<|>)(.*))?", re.ASCII | re.DOTALL)


def _too_many_tags() -> MergeError:
    return MergeError(f"The template has more than {MAX_TAGS:,} merge tags.")


def _mc_condition(argument: str, tag: str, negated: bool) -> tuple:
    match = _MC_CONDITION.fullmatch(argument)
    if not match:
        raise MergeError(f"{tag} is not a condition: write *|IF:NAME|* or *|IF:NAME=value|*.")
    name, op, operand = match.groups()
    operand = (operand or "").strip()
    if len(operand) >= 2 and operand[0] == operand[-1] and operand[0] in "\"'":
        operand = operand[1:-1]
    return (negated, name.upper(), op, operand)


def _mailchimp_parse(text: str) -> list:
    root: list = []
    body = root
    open_ifs: list[tuple[list, list, str]] = []  # (if node, the body it sits in, its opening tag)
    position = 0
    for count, match in enumerate(_MC_TAG.finditer(text)):
        if count == MAX_TAGS:
            raise _too_many_tags()
        if match.start() > position:
            body.append(text[position : match.start()])
        position = match.end()
        inner, tag = match.group(1), match.group(0)
        if _MC_NAME.fullmatch(inner):
            if inner.upper() == "ELSE":
                keyword, argument = "ELSE", ""
            else:
                body.append(("var", inner.upper()))
                continue
        elif keyword_match := _MC_KEYWORD.fullmatch(inner):
            keyword, argument = keyword_match.group(1).upper(), keyword_match.group(2)
        else:
            body.append(tag)  # "*| not a tag |*" is text, as Mandrill leaves it
            continue

        if keyword in ("IF", "IFNOT"):
            node: list = ["if", [[_mc_condition(argument, tag, negated=keyword == "IFNOT"), []]], None]
            body.append(node)
            open_ifs.append((node, body, tag))
            if len(open_ifs) > MAX_NESTING:
                raise MergeError(f"Conditions may be nested at most {MAX_NESTING} deep.")
            body = node[1][0][1]
        elif keyword in ("ELSEIF", "ELSE"):
            if not open_ifs:
                raise MergeError(f"{tag} has no *|IF:…|* before it.")
            node = open_ifs[-1][0]
            if node[2] is not None:
                raise MergeError(f"{tag} comes after the *|ELSE:|* of its *|IF:…|*.")
            if keyword == "ELSE":
                if argument.strip():
                    raise MergeError(f"{tag} should be written *|ELSE:|*.")
                node[2] = body = []
            else:
                node[1].append([_mc_condition(argument, tag, negated=False), []])
                body = node[1][-1][1]
        elif keyword == "END":
            if argument.strip().upper() != "IF":
                raise MergeError(f"{tag} is not a tag Mandrill knows: conditions end with *|END:IF|*.")
            if not open_ifs:
                raise MergeError(f"{tag} has no *|IF:…|* to close.")
            body = open_ifs.pop()[1]
        elif keyword == "MC" and argument.upper() == "SUBJECT":
            body.append(("std", "subject", ""))
        elif keyword in ("DATE", "UNSUB"):
            body.append(("std", keyword.lower(), argument))
        else:
            # A Mailchimp campaign tag (*|LIST:COMPANY|*, *|ARCHIVE:…|*) has no meaning in a transactional
            # send. Like an unknown variable, it renders empty.
            pass
    if open_ifs:
        raise MergeError(f"{open_ifs[-1][2]} is never closed with *|END:IF|*.")
    if position < len(text):
        body.append(text[position:])
    return root


def _mailchimp_render(text: str, variables: Mapping[str, Any], context: MergeContext) -> str:
    tree = _mailchimp_parse(text)
    values = {name.upper(): value for name, value in variables.items()}
    budget = _Budget()
    out: list[str] = []
    _mailchimp_eval(tree, values, context, budget, out)
    return "".join(out)


def _mailchimp_provided(value: Any) -> bool:
    """Mandrill's "a value was provided": anything but null, false, "" and an empty array or object."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _mailchimp_eval(
    nodes: list, values: dict[str, Any], context: MergeContext, budget: _Budget, out: list[str]
) -> None:
    for node in nodes:
        budget.step()
        if isinstance(node, str):
            budget.emit(out, node)
        elif node[0] == "var":
            budget.emit(out, _mailchimp_var(node[1], values, context, budget))
        elif node[0] == "std":
            budget.emit(out, _mailchimp_standard(node[1], node[2], context, budget))
        else:
            for (negated, name, op, operand), body in node[1]:
                value = values.get(name)
                holds = _mailchimp_provided(value) if op is None else _compare(value, op, operand, budget)
                if holds != negated:
                    _mailchimp_eval(body, values, context, budget, out)
                    break
            else:
                if node[2] is not None:
                    _mailchimp_eval(node[2], values, context, budget, out)


def _mailchimp_var(name: str, values: dict[str, Any], context: MergeContext, budget: _Budget) -> str:
    # A merge var the sender supplied wins over a standard tag of the same name.
    if name in values:
        return _text(values[name], budget)
    if name == "CURRENT_YEAR":
        return str(_now(context).year)
    if name == "EMAIL":
        return context.recipient_email
    if name == "UNSUB":
        return _unsubscribe_link(context, "")
    return ""


def _mailchimp_standard(kind: str, argument: str, context: MergeContext, budget: _Budget) -> str:
    if kind == "subject":
        return context.subject
    if kind == "date":
        return _php_date(argument, _now(context), budget)
    return _unsubscribe_link(context, argument.strip())


# --- Handlebars -------------------------------------------------------------------------------------
#
# Why not a library: pybars3 (0.9.7) and pybars4 (0.9.13), the Python Handlebars ports, compile each
# template into Python source and exec it. A template path such as `{{a.[x') or … or ('].b}}` runs
# arbitrary Python, and our templates are written by customers. Compiling also costs about 60 µs per
# template character (6 s for 100 KB), and it fails with RecursionError at ~100 nested blocks. This
# is an interpreter for the subset Mandrill documents, over a parsed tree, with the budgets above.
#
# Supported: {{path}} and {{{path}}} / {{& path}}; paths with ".", "/", [segment], this, ../ and @index,
# @first, @last, @key, @root; comments; \{{ escapes; ~ whitespace control; standalone lines; blocks
# if / unless / each / with with {{else}}, {{else if …}} and Mandrill's {{elseif …}}; sections
# {{#name}} and {{^name}}; backtick comparisons in if, unless and elseif; the inline helpers upper,
# lower, title, url, date, striptags and unsub. Partials, subexpressions, hash arguments, block
# parameters and other helpers are refused with a MergeError. Mandrill registers no other helpers.

_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
)
# A mustache's inside: anything up to "}}", where quoted strings may hold braces. Possessive
# quantifiers, so a mustache that never closes fails in one linear scan.
_HB_INSIDE = re.compile(r"""(?:[^}"'`~]++|~(?!}})|"(?:[^"\\]|\\.)*+"|'(?:[^'\\]|\\.)*+'|`[^`]*+`)*+""")
_HB_CLOSE = re.compile(r"(~?)}}")
_HB_TRIPLE_CLOSE = re.compile(r"}(~?)}}")
_HB_COMMENT_CLOSE = re.compile(r"(~?)}}")
_HB_LONG_COMMENT_CLOSE = re.compile(r"--(~?)}}")
_HB_ARGUMENT = re.compile(
    r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`([^`]*)`|((?:\[[^\]]*\]|[^\s"'`()=|\[\]])+))"""
)
_HB_ID = re.compile(r"""[^\s!"#%&'()*+,./;<=>@\[\\\]^`{|}~]+""")
_HB_INTEGER = re.compile(r"-?\d+", re.ASCII)
_HB_DECIMAL = re.compile(r"-?\d+\.\d+", re.ASCII)
_HB_BACKTICK = re.compile(
    r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"'=!<>]+)\s*"""
    r"""(?:(===|!==|==|!=|<=|>=|<|>)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"'=!<>]+)\s*)?"""
)
_HB_STRING_ESCAPE = re.compile(r"\\(.)")
# The common case, {{name}} or {{order.total}}, read without the general parser.
_HB_SIMPLE_OUTPUT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_$-]*(?:\.[A-Za-z_][A-Za-z0-9_$-]*)*)\s*\}\}")
_HB_RESERVED_WORDS = frozenset(
    {"else", "elseif", "this", "true", "false", "null", "undefined", "date", "unsub"}
)

_HB_BLOCK_HELPERS = frozenset({"if", "unless", "each", "with"})
# name -> (fewest, most) arguments
_HB_INLINE_HELPERS = {
    "upper": (1, 1),
    "lower": (1, 1),
    "title": (1, 1),
    "url": (1, 1),
    "striptags": (1, 1),
    "date": (0, 1),
    "unsub": (0, 1),
}
_HB_DATA_NAMES = frozenset({"index", "first", "last", "key", "root"})

# Words that stay as written inside a title, so {{title "your text is neat"}} is "Your Text is Neat",
# Mandrill's documented example.
_TITLE_SMALL_WORDS = frozenset(
    "a an and as at but by en for from if in into is nor of on or per so the to v via vs with yet".split()  # noqa: SIM905 (reads best as words)
)


class _Text:
    """A run of template text. `original` is kept because the standalone-line rule looks at the text
    as written, even after a neighbour's whitespace control trimmed `value`."""

    __slots__ = ("original", "value")

    def __init__(self, value: str) -> None:
        self.original = value
        self.value = value


class _Tag:
    """A mustache, between tokenising and building the tree."""

    __slots__ = ("kind", "payload", "standalone", "strip_after", "strip_before")

    def __init__(self, kind: str, payload: Any, strip_before: bool, strip_after: bool) -> None:
        self.kind = kind  # "output", "open", "else", "close" or "comment"
        self.payload = payload
        self.strip_before = strip_before
        self.strip_after = strip_after
        # Handlebars' standalone rule: every tag but an output takes its line away when alone on it.
        self.standalone = kind != "output"


class _Output:
    __slots__ = ("arguments", "escape", "helper")

    def __init__(self, helper: str | None, arguments: list, escape: bool) -> None:
        self.helper = helper  # None: print arguments[0]
        self.arguments = arguments
        self.escape = escape


class _Block:
    """A block and its chain: each branch is [helper, argument, body], tried in order until one is
    taken; `otherwise` is the final {{else}}. A section {{#name}} is the helper "section"."""

    __slots__ = ("branches", "name", "opening", "otherwise")

    def __init__(self, name: str, opening: str, helper: str, argument: Any) -> None:
        self.name = name  # what its {{/…}} must say
        self.opening = opening  # the tag as written, for messages
        self.branches: list[list] = [[helper, argument, []]]
        self.otherwise: list | None = None


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _hb_tokenize(text: str) -> list:
    tokens: list = []
    position = 0
    pending: list[str] = []  # text up to the next mustache, which "\{{" escapes may split
    tags = 0  # escaped ones too: each costs a loop
    depth = 0  # checked here too, so a deeply nested template is refused before it is all read
    outputs: dict[str, _Output] = {}  # {{name}} repeats; an output node is never changed, so share it
    while True:
        start = text.find("{{", position)
        if start < 0:
            pending.append(text[position:])
            tokens.append(_Text("".join(pending)))
            break
        tags += 1
        if tags > MAX_TAGS:
            raise _too_many_tags()
        if start > position and text[start - 1] == "\\":
            if start - 1 > position and text[start - 2] == "\\":
                # "\\{{x}}" prints one backslash, then the mustache.
                pending.append(text[position : start - 1])
            else:
                pending.append(text[position : start - 1] + "{{")
                position = start + 2
                continue
        else:
            pending.append(text[position:start])
        tokens.append(_Text("".join(pending)))
        pending = []
        simple = _HB_SIMPLE_OUTPUT.match(text, start)
        if simple and simple.group(1).partition(".")[0] not in _HB_RESERVED_WORDS:
            name = simple.group(1)
            if name not in outputs:
                path = ("path", 0, False, tuple(name.split(".")), False)
                outputs[name] = _Output(None, [path], escape=True)
            tokens.append(_Tag("output", outputs[name], False, False))
            position = simple.end()
            continue
        tag, position = _hb_read_tag(text, start)
        if tag.kind == "open":
            depth += 1
            if depth > MAX_NESTING:
                raise MergeError(f"Blocks may be nested at most {MAX_NESTING} deep.")
        elif tag.kind == "close":
            depth -= 1
        tokens.append(tag)
    return [token for token in tokens if not (isinstance(token, _Text) and token.value == "")]


def _hb_read_tag(text: str, start: int) -> tuple[_Tag, int]:
    """The mustache that starts at `start`, and the position after it."""
    cursor = start + 2
    strip_before = text.startswith("~", cursor)
    if strip_before:
        cursor += 1

    if text.startswith("!", cursor):
        closer = _HB_LONG_COMMENT_CLOSE if text.startswith("!--", cursor) else _HB_COMMENT_CLOSE
        match = closer.search(text, cursor + 1)
        if not match:
            raise MergeError(f"The {{{{! on line {_line_of(text, start)} is never closed.")
        return _Tag("comment", None, strip_before, bool(match.group(1))), match.end()

    sigil = text[cursor : cursor + 1]
    if sigil in ("{", "&", "#", "^", "/", ">"):
        cursor += 1
    else:
        sigil = ""
    inside_end = _HB_INSIDE.match(text, cursor).end()
    closer = _HB_TRIPLE_CLOSE if sigil == "{" else _HB_CLOSE
    match = closer.match(text, inside_end)
    if not match:
        raise MergeError(f"The {{{{ on line {_line_of(text, start)} is never closed with }}}}.")
    end = match.end()
    strip_after = bool(match.group(1))
    inside = text[cursor:inside_end].strip()
    where = "{{" + sigil + inside + ("}}}" if sigil == "{" else "}}")

    if sigil == ">":
        raise MergeError(f"{where}: partials are not supported.")
    if sigil in ("#", "^") and inside[:1] in (">", "*"):
        raise MergeError(f"{where}: partial blocks and decorators are not supported.")
    if sigil == "/":
        return _Tag("close", inside, strip_before, strip_after), end
    if sigil == "^" and not inside:
        return _Tag("else", None, strip_before, strip_after), end

    arguments = _hb_arguments(inside, where)
    if not arguments:
        raise MergeError(f"{where} is empty.")
    if sigil in ("#", "^"):
        return _Tag("open", _hb_open(sigil, inside, arguments, where), strip_before, strip_after), end
    keyword = _hb_simple_name(arguments[0]) if sigil == "" else None
    if keyword in ("else", "elseif"):
        return _Tag("else", _hb_else(keyword, arguments[1:], where), strip_before, strip_after), end
    return _Tag("output", _hb_output(arguments, sigil == "", where), strip_before, strip_after), end


def _hb_else(keyword: str, arguments: list, where: str) -> tuple[str, tuple] | None:
    """None for a plain {{else}}; (helper, argument) for {{else if x}}, {{elseif x}} (Mandrill's)."""
    if keyword == "else" and not arguments:
        return None
    if keyword == "elseif":
        helper: str | None = "if"
    else:
        helper, arguments = _hb_simple_name(arguments[0]), arguments[1:]
    if helper not in _HB_BLOCK_HELPERS:
        raise MergeError(f"{where}: only if, unless, each and with can follow {{{{else}}}}.")
    return helper, _hb_block_argument(helper, arguments, where)


def _hb_arguments(inside: str, where: str) -> list:
    """The space-separated parts of a mustache: paths, literals and backtick comparisons."""
    arguments = []
    position = 0
    while position < len(inside):
        match = _HB_ARGUMENT.match(inside, position)
        if not match:
            _hb_refuse(inside[position:].lstrip(), where)
        position = match.end()
        if position < len(inside) and not inside[position].isspace():
            _hb_refuse(inside[position:], where)
        double, single, backtick, word = match.groups()
        if double is not None or single is not None:
            arguments.append(
                ("literal", _HB_STRING_ESCAPE.sub(r"\1", double if double is not None else single))
            )
        elif backtick is not None:
            arguments.append(_hb_backtick(backtick, where))
        else:
            arguments.append(_hb_word(word, where))
    return arguments


def _hb_refuse(rest: str, where: str) -> None:
    """Say which unsupported Handlebars syntax `rest` starts with."""
    if rest[:1] in ("(", ")"):
        raise MergeError(f"{where}: subexpressions are not supported; compare with backticks instead.")
    if rest[:1] == "=":
        raise MergeError(f"{where}: hash arguments (name=value) are not supported.")
    if rest[:1] == "|":
        raise MergeError(f"{where}: block parameters (as |x|) are not supported.")
    if rest[:1] == "[":
        raise MergeError(f"{where}: a [segment] is never closed.")
    raise MergeError(f"{where} is not a valid Handlebars expression.")


def _hb_word(word: str, where: str) -> tuple:
    if word in ("true", "false"):
        return ("literal", word == "true")
    if word in ("null", "undefined"):
        return ("literal", None)
    if _HB_INTEGER.fullmatch(word):
        return ("literal", int(word) if len(word) <= 18 else word)
    if _HB_DECIMAL.fullmatch(word):
        return ("literal", float(word) if len(word) <= 24 else word)
    return _hb_path(word, where)


def _hb_path(word: str, where: str) -> tuple:
    """("path", levels up, is @data, segments, starts at this)."""
    rest = word
    data = rest.startswith("@")
    if data:
        rest = rest[1:]
    up = 0
    while rest.startswith("../"):
        up += 1
        rest = rest[3:]
    if rest == "..":
        up += 1
        rest = ""
    explicit = False
    if rest in (".", "this"):
        explicit, rest = True, ""
    else:
        for prefix in ("./", "this.", "this/"):
            if rest.startswith(prefix):
                explicit, rest = True, rest[len(prefix) :]
                break
    segments: list[str] = []
    position = 0
    while position < len(rest):
        if rest[position] == "[":
            end = rest.find("]", position)
            if end < 0:
                raise MergeError(f"{where}: a [segment] is never closed.")
            segments.append(rest[position + 1 : end])
            position = end + 1
        else:
            match = _HB_ID.match(rest, position)
            if not match:
                raise MergeError(f"{where}: {word!r} is not a valid path.")
            segments.append(match.group())
            position = match.end()
        if position < len(rest):
            if rest[position] not in "./" or position + 1 == len(rest):
                raise MergeError(f"{where}: {word!r} is not a valid path.")
            position += 1
    if data and (not segments or segments[0] not in _HB_DATA_NAMES):
        raise MergeError(f"{where}: {word!r} is not a Handlebars data variable.")
    if not segments and not explicit and not up:
        raise MergeError(f"{where}: {word!r} is not a valid path.")
    return ("path", up, data, tuple(segments), explicit)


def _hb_simple_name(argument: tuple) -> str | None:
    """The name of a plain one-segment path (a helper's or a keyword's), else None."""
    if argument[0] != "path":
        return None
    _, up, data, segments, explicit = argument
    if up or data or explicit or len(segments) != 1:
        return None
    return segments[0]


def _hb_backtick(source: str, where: str) -> tuple:
    match = _HB_BACKTICK.fullmatch(source)
    if not match:
        raise MergeError(
            f'{where}: `{source}` is not a comparison; write `name > 3` or `name == "text"` '
            "(==, !=, <, >, <=, >=)."
        )
    left, op, right = match.groups()
    operands = []
    for operand in (left, right):
        if operand is None:
            operands.append(None)
        elif operand[0] in "\"'":
            operands.append(("literal", _HB_STRING_ESCAPE.sub(r"\1", operand[1:-1])))
        else:
            operands.append(_hb_word(operand, where))
    return ("compare", operands[0], op, operands[1])


def _hb_open(sigil: str, inside: str, arguments: list, where: str) -> _Block:
    name = _hb_simple_name(arguments[0])
    if sigil == "^":
        if len(arguments) != 1 or arguments[0][0] != "path":
            raise MergeError(f"{where}: an inverted section takes one name.")
        return _Block(inside, where, "unless", arguments[0])
    if name in _HB_BLOCK_HELPERS:
        return _Block(name, where, name, _hb_block_argument(name, arguments[1:], where))
    if name in _HB_INLINE_HELPERS:
        raise MergeError(f"{where}: {name} is an inline helper; write {{{{{name} …}}}}, not a block.")
    if len(arguments) != 1 or arguments[0][0] != "path":
        raise MergeError(f"{where}: {inside.split()[0]} is not a block helper Mandrill provides.")
    return _Block(inside, where, "section", arguments[0])


def _hb_block_argument(helper: str, arguments: list, where: str) -> tuple:
    if len(arguments) != 1:
        raise MergeError(f"{where}: {helper} takes exactly one argument.")
    if arguments[0][0] == "compare" and helper not in ("if", "unless"):
        raise MergeError(f"{where}: backtick comparisons work with if, unless and elseif only.")
    return arguments[0]


def _hb_output(arguments: list, escape: bool, where: str) -> _Output:
    first = arguments[0]
    name = _hb_simple_name(first)
    if len(arguments) == 1:
        if first[0] == "compare":
            raise MergeError(f"{where}: a backtick comparison can only be the condition of an if.")
        # date and unsub also work without arguments; other helper names alone are variables.
        if name in ("date", "unsub"):
            return _Output(name, [], escape)
        return _Output(None, arguments, escape)
    if name not in _HB_INLINE_HELPERS:
        shown = name if name is not None else "that expression"
        raise MergeError(f"{where}: {shown} is not a helper Mandrill provides.")
    fewest, most = _HB_INLINE_HELPERS[name]
    if not fewest <= len(arguments) - 1 <= most:
        raise MergeError(
            f"{where}: {name} takes {'one argument' if fewest == 1 else 'at most one argument'}."
        )
    if any(argument[0] == "compare" for argument in arguments[1:]):
        raise MergeError(f"{where}: a backtick comparison can only be the condition of an if.")
    return _Output(name, arguments[1:], escape)


def _hb_whitespace(tokens: list) -> None:
    """Apply `~` and Handlebars' standalone rule: a block, else, close or comment tag alone on its line
    takes that line's indentation and line break with it."""
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        if isinstance(token, _Text):
            continue
        before = tokens[index - 1] if index > 0 else None
        after = tokens[index + 1] if index < last else None
        if token.strip_before and isinstance(before, _Text):
            before.value = before.value.rstrip()
        if token.strip_after and isinstance(after, _Text):
            after.value = after.value.lstrip()
        if not token.standalone:
            continue
        if before is None:
            alone_before = True
        elif isinstance(before, _Text):
            trailing = before.original[len(before.original.rstrip()) :]
            alone_before = "\n" in trailing or (index - 1 == 0 and trailing == before.original)
        else:
            alone_before = False
        if after is None:
            alone_after = True
        elif isinstance(after, _Text):
            leading = after.original[: len(after.original) - len(after.original.lstrip())]
            alone_after = "\n" in leading or (index + 1 == last and leading == after.original)
        else:
            alone_after = False
        if alone_before and alone_after:
            if isinstance(before, _Text):
                before.value = before.value.rstrip(" \t")
            if isinstance(after, _Text):
                value = after.value.lstrip(" \t")
                value = value.removeprefix("\r")
                after.value = value.removeprefix("\n")


def _hb_parse(text: str) -> list:
    tokens = _hb_tokenize(text)
    _hb_whitespace(tokens)
    root: list = []
    body = root
    open_blocks: list[tuple[_Block, list]] = []  # (block, the body it sits in)
    for token in tokens:
        if isinstance(token, _Text):
            if token.value:
                body.append(token.value)
            continue
        if token.kind == "output":
            body.append(token.payload)
        elif token.kind == "open":
            body.append(token.payload)
            open_blocks.append((token.payload, body))
            if len(open_blocks) > MAX_NESTING:
                raise MergeError(f"Blocks may be nested at most {MAX_NESTING} deep.")
            body = token.payload.branches[0][2]
        elif token.kind == "else":
            if not open_blocks:
                raise MergeError("{{else}} is not inside a block.")
            block = open_blocks[-1][0]
            if block.otherwise is not None:
                raise MergeError(f"{block.opening} has another branch after its {{{{else}}}}.")
            if token.payload is None:
                block.otherwise = body = []
            else:
                helper, argument = token.payload
                block.branches.append([helper, argument, []])
                body = block.branches[-1][2]
        elif token.kind == "close":
            if not open_blocks:
                raise MergeError(f"{{{{/{token.payload}}}}} closes no block.")
            block, body = open_blocks.pop()
            if token.payload != block.name:
                raise MergeError(f"{block.opening} is closed by {{{{/{token.payload}}}}}.")
    if open_blocks:
        raise MergeError(f"{open_blocks[-1][0].opening} is never closed.")
    return root


class _Frame:
    """A context in the stack that `../` climbs: each and with push one, if does not.

    The loop position (`@index`, `@key`, `@first`, `@last`) is kept as fields and spelt out only when
    a template asks, because a loop makes one frame per item. A `with` inside a loop keeps the loop's
    position, as in Handlebars.
    """

    __slots__ = ("context", "count", "index", "key", "parent")

    def __init__(
        self, context: Any, parent: "_Frame | None", index: int = -1, key: Any = None, count: int = 0
    ):
        self.context = context
        self.parent = parent
        self.index = index  # -1: not in a loop
        self.key = key
        self.count = count

    def nested(self, context: Any) -> "_Frame":
        return _Frame(context, self, self.index, self.key, self.count)

    def data(self, name: str, root: Any) -> Any:
        if name == "root":
            return root
        if self.index < 0:
            return None
        if name == "index":
            return self.index
        if name == "key":
            return self.key
        if name == "first":
            return self.index == 0
        return self.index == self.count - 1  # "last": the parser admits no other name


class _Handlebars:
    def __init__(self, variables: Mapping[str, Any], context: MergeContext) -> None:
        self.root = variables
        self.root_by_folded_name: dict[str, str] = {}
        for name in variables:
            self.root_by_folded_name.setdefault(name.lower(), name)
        self.context = context
        self.budget = _Budget()

    def render(self, nodes: list, frame: _Frame, out: list[str]) -> None:
        budget = self.budget
        for node in nodes:
            budget.step()
            if isinstance(node, str):
                budget.emit(out, node)
            elif isinstance(node, _Output):
                text = self.output(node, frame)
                budget.emit(out, text.translate(_HTML_ESCAPES) if node.escape else text)
            else:
                self.block(node, frame, out)

    def output(self, node: _Output, frame: _Frame) -> str:
        budget = self.budget
        values = [self.resolve(argument, frame) for argument in node.arguments]
        if node.helper is None:
            return _text(values[0], budget)
        if node.helper == "date":
            return _php_date(_text(values[0], budget) if values else "d/m/Y", _now(self.context), budget)
        if node.helper == "unsub":
            return _unsubscribe_link(self.context, _text(values[0], budget).strip() if values else "")
        text = budget.charge(_text(values[0], budget))
        if node.helper == "upper":
            return text.upper()
        if node.helper == "lower":
            return text.lower()
        if node.helper == "title":
            return _title(text)
        if node.helper == "url":
            # PHP's urlencode (Mandrill's): a space becomes "+". A lone surrogate, which has no UTF-8
            # form, is sent as "?".
            return quote_plus(text, safe="", errors="replace")
        return _strip_tags(text)

    def block(self, node: _Block, frame: _Frame, out: list[str]) -> None:
        for helper, argument, body in node.branches:
            if helper in ("if", "unless"):
                value = self.condition(argument, frame)
                if value != (helper == "unless"):
                    self.render(body, frame, out)
                    return
                continue
            value = self.resolve(argument, frame)
            if helper == "with":
                if not _handlebars_empty(value):
                    self.render(body, frame.nested(value), out)
                    return
            elif helper == "each" or isinstance(value, list | tuple):
                if self.each(value, body, frame, out):
                    return
            elif value is True:  # a section over true renders once, in the same context
                self.render(body, frame, out)
                return
            elif value is not None and value is not False:
                self.render(body, frame.nested(value), out)
                return
        if node.otherwise is not None:
            self.render(node.otherwise, frame, out)

    def each(self, value: Any, body: list, frame: _Frame, out: list[str]) -> bool:
        """Render body once per item; False (nothing rendered) for an empty or non-iterable value."""
        if isinstance(value, list | tuple):
            items: Any = enumerate(value)
        elif isinstance(value, Mapping):
            items = iter(value.items())
        else:
            return False
        count = len(value)
        if not count:
            return False
        for index, (key, item) in enumerate(items):
            self.budget.step(2)  # an iteration costs about two steps' time: its frame and its call
            self.render(body, _Frame(item, frame, index, key, count), out)
        return True

    def condition(self, argument: tuple, frame: _Frame) -> bool:
        if argument[0] != "compare":
            return not _handlebars_falsy(self.resolve(argument, frame))
        _, left, op, right = argument
        left_value = self.resolve(left, frame)
        if op is None:
            return not _handlebars_falsy(left_value)
        return _compare(left_value, op, self.resolve(right, frame), self.budget)

    def resolve(self, argument: tuple, frame: _Frame) -> Any:
        if argument[0] == "literal":
            return argument[1]
        _, up, data, segments, _explicit = argument
        for _ in range(up):
            if frame.parent is None:
                return None
            frame = frame.parent
        if data:
            value = frame.data(segments[0], self.root)
            segments = segments[1:]
        else:
            value = frame.context
        for segment in segments:
            self.budget.step()
            value = self.child(value, segment)
            if value is None:
                return None
        return value

    def child(self, value: Any, segment: str) -> Any:
        if isinstance(value, Mapping):
            if segment in value:
                return value[segment]
            if value is self.root:
                folded = self.root_by_folded_name.get(segment.lower())
                return value[folded] if folded is not None else None
            return None
        if isinstance(value, list | tuple | str):
            if segment == "length":
                return len(value)
            if (
                isinstance(value, list | tuple)
                and segment.isascii()
                and segment.isdigit()
                and len(segment) < 10
            ):
                index = int(segment)
                return value[index] if index < len(value) else None
        return None


def _handlebars_render(text: str, variables: Mapping[str, Any], context: MergeContext) -> str:
    tree = _hb_parse(text)
    engine = _Handlebars(variables, context)
    out: list[str] = []
    engine.render(tree, _Frame(variables, None), out)
    return "".join(out)


def _handlebars_falsy(value: Any) -> bool:
    """Handlebars' `if`: false for null, false, "", 0 and an empty array (an empty object is true)."""
    if value is None or value is False:
        return True
    if isinstance(value, str | list | tuple):
        return len(value) == 0
    if isinstance(value, int | float):
        return value == 0 or value != value  # NaN
    return False


def _handlebars_empty(value: Any) -> bool:
    """Handlebars' `with`: like `if`, except that 0 counts as a value."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return False
    return _handlebars_falsy(value)


def _title(text: str) -> str:
    words = re.split(r"(\s+)", text)
    last = len(words) - 1
    titled = []
    for index, word in enumerate(words):
        if index % 2 or (0 < index < last and word.lower() in _TITLE_SMALL_WORDS):
            titled.append(word)
        else:
            titled.append(word[:1].upper() + word[1:])
    return "".join(titled)


_TAG_LIKE = re.compile(r"<[A-Za-z/!?][^<>]*>")


def _strip_tags(text: str) -> str:
    """Remove HTML comments and tags, keeping text and entities as PHP's strip_tags does.

    A "<" that starts no tag ("a < b") stays. Scanning with str.find and a pattern that stops at the
    next "<" keeps this linear even for text full of unclosed "<".
    """
    pieces = []
    position = 0
    while (start := text.find("<!--", position)) >= 0:
        pieces.append(text[position:start])
        end = text.find("-->", start + 4)
        position = len(text) if end < 0 else end + 3
    pieces.append(text[position:])
    return _TAG_LIKE.sub("", "".join(pieces))


# --- mc:edit regions --------------------------------------------------------------------------------

_VOID_ELEMENTS = frozenset(
    "area base br col embed hr img input keygen link meta param source track wbr".split()  # noqa: SIM905 (reads best as words)
)


class _RegionFinder(HTMLParser):
    """Finds the inner span of each element with mc:edit="name", by character offset.

    Only offsets are recorded, so the caller can splice the original text and leave the rest of the
    document as it was. Elements are matched by counting start and end tags of the same name, so a
    region's element needs its end tag (which Mailchimp's editor requires too).
    """

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.line_offsets = [0]
        position = document.find("\n")
        while position >= 0:
            self.line_offsets.append(position + 1)
            position = document.find("\n", position + 1)
        self.tags = 0
        self.open_count: dict[str, int] = {}
        self.open_regions: dict[str, list[tuple[str, int, int]]] = {}  # tag -> [(name, level, start)]
        self.regions: list[tuple[int, int, str]] = []  # (inner start, inner end, name)

    def position(self) -> int:
        line, column = self.getpos()
        return self.line_offsets[line - 1] + column

    def count_tag(self) -> None:
        # HTMLParser takes 5-10 µs a tag: the cap keeps a document of a million "<b>" from taking 10 s.
        self.tags += 1
        if self.tags > MAX_TAGS:
            raise MergeError(f"The template has more than {MAX_TAGS:,} HTML tags.")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count_tag()
        if tag in _VOID_ELEMENTS:
            return
        level = self.open_count.get(tag, 0) + 1
        self.open_count[tag] = level
        name = next((value for key, value in attrs if key == "mc:edit"), None)
        if name is not None:
            inner_start = self.position() + len(self.get_starttag_text() or "")
            self.open_regions.setdefault(tag, []).append((name, level, inner_start))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count_tag()  # <div mc:edit="x"/> has no inner HTML to replace, and opens nothing

    def handle_endtag(self, tag: str) -> None:
        self.count_tag()
        level = self.open_count.get(tag, 0)
        if not level:
            return  # a stray end tag; browsers ignore it too
        regions = self.open_regions.get(tag)
        if regions and regions[-1][1] == level:
            name, _, inner_start = regions.pop()
            self.regions.append((inner_start, self.position(), name))
        self.open_count[tag] = level - 1


def fill_editable_regions(html: str, template_content: list[dict]) -> str:
    """Replace the inner HTML of each `mc:edit="name"` element with `template_content`'s content.

    The element and its attributes are kept, and so is everything outside replaced regions, character
    for character. Regions not named in `template_content` keep their default content. Names in it
    that match no region are ignored. When a name is given twice, the last one wins. When a replaced
    region contains other regions, they go with its old content. An mc:edit on a void or self-closed
    element (`<img>`, `<div/>`) has no content and is left alone.

    Raises MergeError when `template_content` has the wrong shape, or when a region's element is never
    closed. It also raises when the document or the result exceeds MAX_OUTPUT_CHARS, or the document
    has more than MAX_TAGS tags.
    """
    if not isinstance(html, str):
        raise MergeError("The template's HTML must be a string.")
    if len(html) > MAX_OUTPUT_CHARS:
        raise MergeError(f"The template is longer than {MAX_OUTPUT_CHARS:,} characters.")
    contents: dict[str, str] = {}
    if template_content is not None:
        if not isinstance(template_content, list):
            raise MergeError("template_content must be an array of {name, content} objects.")
        for position, entry in enumerate(template_content):
            if not isinstance(entry, Mapping):
                raise MergeError(f"template_content[{position}] must be an object with a name and a content.")
            name, content = entry.get("name"), entry.get("content")
            if not isinstance(name, str):
                raise MergeError(f"template_content[{position}].name must be a string.")
            if content is not None and not isinstance(content, str):
                raise MergeError(f"template_content[{position}].content must be a string.")
            contents[name] = content or ""

    if "mc:edit" not in html.lower():
        return html  # no region: nothing to fill and nothing that could be left unclosed
    finder = _RegionFinder(html)
    finder.feed(html)
    finder.close()
    unclosed = [region for regions in finder.open_regions.values() for region in regions]
    if unclosed:
        name = min(unclosed, key=lambda region: region[2])[0]
        raise MergeError(f'The mc:edit region "{name}" is never closed.')

    budget = _Budget()
    out: list[str] = []
    position = 0
    for inner_start, inner_end, name in sorted(finder.regions):
        if name not in contents or inner_start < position:
            continue  # kept as it is, or inside a region already replaced
        budget.emit(out, html[position:inner_start])
        budget.emit(out, contents[name])
        position = inner_end
    budget.emit(out, html[position:])
    return "".join(out)
