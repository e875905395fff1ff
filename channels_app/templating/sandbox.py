"""The Jinja2 sandbox every notification template renders in, with a time and size budget.

Admins write these templates, and a template that loops forever or builds a gigabyte string must not stall the
worker that sends pages, in whatever thread it runs (so no SIGALRM). The sandbox:

- is Jinja2's ImmutableSandboxedEnvironment: no `_private` or internal attributes, no mutation of lists and dicts,
  no callables marked unsafe; an unsafe access raises at once instead of rendering as empty;
- lets strings, numbers and bytes use only a short list of harmless methods;
- checks a per-render deadline in every loop iteration (each `{% for %}` iterates through `budget_iter`), every
  call, attribute and item access, every arithmetic operator and between output chunks;
- refuses, before computing it, any value past MAX_VALUE_CHARS characters or MAX_ITEMS items (`'x' * 10**9`,
  `~` concatenation, `join`, `replace`, `center`…) and any integer past MAX_INT_BITS bits (`**`, `*`);
- refuses, before turning it into text, a list or dict whose text would pass MAX_VALUE_CHARS (`{{ items }}`,
  `|string`, `|pprint`, `|tojson`, `'%s' % items`…): its parts may each be small while it repeats them;
- replaces `range` by a budgeted one and drops `lipsum`, `urlize` and `xmlattr` where they make no sense;
- escapes every `{{ value }}` for the slot's markup (see escaping.py); `|raw` inserts a value as it is.

The render itself (streaming, the output cap) is in render.py.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any

import markupsafe
from jinja2 import nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as BUILTIN_FILTERS
from jinja2.filters import do_wordwrap, sync_do_slice
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from channels_app.templating import filters
from channels_app.templating.escaping import escape_for, escape_html, json_default, to_json
from channels_app.templating.slots import MarkupKind
from channels_app.templating.textsize import text_length

MAX_SOURCE_CHARS = 20_000
MAX_VALUE_CHARS = 100_000
MAX_ITEMS = 100_000
MAX_INT_BITS = 10_000
MAX_WIDTH = 1_000  # center, indent, ljust…: padding a value may get
RENDER_SECONDS = 0.5


class BudgetExceeded(SecurityError):
    """The template ran too long or tried to build too large a value."""


@dataclass
class Budget:
    deadline: float

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"the template ran longer than {RENDER_SECONDS:g} s and was stopped")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _as_is(text: Any) -> markupsafe.Markup:
    """`text` marked as written in the slot's markup already, so it is output as it is."""
    # Callers pass text they escaped for the slot, or a value the template's author marked raw on purpose.
    return markupsafe.Markup(text)  # noqa: S704


def tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.check()


class budget_scope:  # used as a context manager, named like one
    """Render under a deadline `seconds` from now, in this thread or task only."""

    def __init__(self, seconds: float = RENDER_SECONDS) -> None:
        self.seconds = seconds

    def __enter__(self) -> Budget:
        budget = Budget(time.monotonic() + self.seconds)
        self._token = _budget.set(budget)
        return budget

    def __exit__(self, *exc) -> None:
        _budget.reset(self._token)


def _check_size(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise BudgetExceeded(f"a value of more than {MAX_VALUE_CHARS} characters was refused")
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        if len(value) > MAX_ITEMS:
            raise BudgetExceeded(f"a list of more than {MAX_ITEMS} items was refused")
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded(f"a number of more than {MAX_INT_BITS} bits was refused")
    return value


def _need(chars: int) -> None:
    if chars > MAX_VALUE_CHARS:
        raise BudgetExceeded(f"a value of more than {MAX_VALUE_CHARS} characters was refused")


def _need_text(*values: Any, indent: int = 0) -> None:
    """Refuses `values` whose text together would pass MAX_VALUE_CHARS, before any of it is built."""
    if len(values) == 1 and isinstance(values[0], str):
        return  # its text is itself: nothing to build
    total = 0
    for value in values:
        total += text_length(value, MAX_VALUE_CHARS - total, indent)
        _need(total)


def _width(width: Any) -> int:
    width = int(width)
    if width > MAX_WIDTH:
        raise BudgetExceeded(f"a width of more than {MAX_WIDTH} was refused")
    return width


class BudgetRange:
    """`range` for templates: at most MAX_ITEMS numbers, and every step checks the deadline."""

    def __init__(self, *args: int) -> None:
        self._range = range(*args)
        if len(self._range) > MAX_ITEMS:
            raise BudgetExceeded(f"range() of more than {MAX_ITEMS} numbers was refused")

    def __iter__(self) -> Iterator[int]:
        for number in self._range:
            tick()
            yield number

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index):
        return self._range[index]

    def __contains__(self, value) -> bool:
        return value in self._range

    def __repr__(self) -> str:
        return repr(self._range)


def budget_iter(iterable: Iterable) -> Iterator:
    """What every `{% for %}` loop iterates through: the deadline is checked before each item."""
    if isinstance(iterable, Undefined):
        iterable = ()
    for item in iterable:
        tick()
        yield item


# Harmless attributes of values templates see; everything else on a string, number or bytes is refused.
STR_ATTRIBUTES = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        # checked before they run (see _checked_str_method)
        "center",
        "join",
        "ljust",
        "replace",
        "rjust",
        "zfill",
        # markupsafe.Markup
        "striptags",
        "unescape",
    }
)
NUMBER_ATTRIBUTES = frozenset({"real", "imag", "numerator", "denominator", "is_integer", "bit_length"})
_MAPPING_KEY = re.compile(r"%\(([^)]*)\)")
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _checked_str_method(obj: str, name: str, method: Callable) -> Callable:
    @wraps(method)
    def checked(*args, **kwargs):
        if name in ("center", "ljust", "rjust", "zfill") and args:
            _width(args[0])
        elif name == "join" and args:
            items = list(budget_iter(args[0]))
            _need_text(*items)
            items = [str(item) for item in items]
            _need(sum(map(len, items)) + len(obj) * max(len(items) - 1, 0))
            args = (items, *args[1:])
        elif name == "replace" and len(args) >= 2:
            _need_text(args[0])
            _need_text(args[1])
            old, new = str(args[0]), str(args[1])
            count = obj.count(old) if old else len(obj) + 1
            _need(len(obj) + count * max(len(new) - len(old), 0))
        return _check_size(method(*args, **kwargs))

    return checked


def _check_percent_format(spec: str, args: Any) -> None:
    """Refuses `spec % args` when a width is too large or the values it formats are too long as text."""
    for match in _FORMAT_SPEC.finditer(spec):
        for number in match.groups():
            if number == "*" or (number and int(number) > MAX_WIDTH):
                raise BudgetExceeded(f"a format width or precision over {MAX_WIDTH} was refused")
    names = _MAPPING_KEY.findall(spec)
    if names and isinstance(args, Mapping):
        _need_text(*(args[name] for name in names if name in args))
    else:
        _need_text(*(args if isinstance(args, tuple) else (args,)))


class BudgetedCodeGenerator(CodeGenerator):
    """Compiles every `{% for %}` to iterate through `environment.budget_iter`, and every `~` to
    `environment.budget_concat`, so loops check the deadline and concatenation checks its size first."""

    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        for loop in list(node.find_all(nodes.For)):
            loop.iter = self._call("budget_iter", [loop.iter], loop.iter.lineno)
        for concat in list(node.find_all(nodes.Concat)):
            # A Concat node cannot become a Call in place, so it is given a Call as its only operand.
            concat.nodes = [self._call("budget_concat", concat.nodes, concat.lineno)]
        super().visit_Template(node, frame)

    def _call(self, name: str, args: list, lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)
        call.set_lineno(lineno)
        call.set_environment(self.environment)
        return call


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """One environment per markup kind; see the module docstring."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, kind: MarkupKind) -> None:
        super().__init__(
            autoescape=True,  # so macros, joins and filters know which values are already marked up
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=0,
            finalize=_finalizer(kind),
        )
        self.kind = kind
        self.globals.pop("lipsum", None)
        self.globals["range"] = BudgetRange
        self.filters = _filters_for(kind)
        self.tests = {**self.tests, "lower": _text_test(self.tests["lower"]), "upper": _text_test(self.tests["upper"])}

    def as_markup(self, value: Any) -> markupsafe.Markup:
        """`value` escaped for the slot's markup; a value already marked up (`__html__`) passes as it is."""
        if hasattr(value, "__html__"):
            return _as_is(value.__html__())
        return _as_is(escape_for(self.kind, value))

    def budget_concat(self, *parts: Any) -> str:
        tick()
        _need_text(*parts)
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        _need(sum(map(len, texts)))
        if any(hasattr(part, "__html__") for part in texts):
            return _as_is("".join(_marked(self.kind, part) for part in texts))
        return "".join(texts)

    def budget_iter(self, iterable: Iterable) -> Iterator:
        return budget_iter(iterable)

    # Hooks the sandbox calls for every access, call and operator.
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in STR_ATTRIBUTES
        if isinstance(obj, (int, float, complex)):
            return attr in NUMBER_ATTRIBUTES
        return not isinstance(obj, (bytes, bytearray, memoryview))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        if isinstance(obj, str) and hasattr(str, attribute):
            # Checked here, because the sandbox hands out str.format before asking is_safe_attribute.
            if not self.is_safe_attribute(obj, attribute, None):
                return self.unsafe_undefined(obj, attribute)
            return _checked_str_method(obj, attribute, getattr(obj, attribute))
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        if not isinstance(argument, (str, int, slice)):
            _need_text(argument)  # a missing key is named in the error, as text
        if isinstance(obj, str) and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)

    def call(__self, __context, __obj, *args, **kwargs):  # the sandbox's own signature
        tick()
        if isinstance(getattr(__obj, "__self__", None), (list, tuple, dict)):
            _need_text(*args, *kwargs.values())  # `items.index(x)` names a missing x in its error, as text
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "*":
            _check_multiply(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                return self.budget_concat(left, right)
            both_lists = isinstance(left, (list, tuple)) and isinstance(right, (list, tuple))
            if both_lists and len(left) + len(right) > MAX_ITEMS:
                raise BudgetExceeded(f"a list of more than {MAX_ITEMS} items was refused")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right)
            if isinstance(left, markupsafe.Markup) and self.kind != MarkupKind.HTML:
                args = right if isinstance(right, tuple) else (right,)
                return _as_is(str(left) % tuple(self.as_markup(arg) for arg in args))
        return _check_size(super().call_binop(context, operator, left, right))


def _check_multiply(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, (str, list, tuple)):
        left, right = right, left
    if isinstance(left, (str, list, tuple)) and isinstance(right, int):
        if len(left) * max(right, 0) > (MAX_VALUE_CHARS if isinstance(left, str) else MAX_ITEMS):
            raise BudgetExceeded("a repeated value was too large and was refused")
    elif isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded(f"a number of more than {MAX_INT_BITS} bits was refused")


def _check_power(left: Any, right: Any) -> None:
    # A float power overflows (OverflowError) or saturates at once; an integer one grows without end.
    growing = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
    if growing and left.bit_length() * right > MAX_INT_BITS:
        raise BudgetExceeded(f"a number of more than {MAX_INT_BITS} bits was refused")


def _finalizer(kind: MarkupKind) -> Callable:
    @pass_eval_context
    def finalize(eval_ctx, value: Any) -> markupsafe.Markup:
        if hasattr(value, "__html__"):
            return value
        if value is None or isinstance(value, Undefined):
            return _as_is("null" if kind == MarkupKind.JSON else "" if value is None else str(value))
        _need_text(value)
        return _as_is(escape_for(kind, value))

    return finalize


def _guarded(function: Callable, *, textual: bool = True) -> Callable:
    """A filter that checks the deadline before it runs and the size of what it returns; a `textual` one also
    refuses a list or dict it would turn into too long a text, before it does."""
    # A filter marked pass_context (or pass_environment…) gets the context first: it is no value of the template.
    skip = 1 if getattr(function, "jinja_pass_arg", None) else 0

    @wraps(function)
    def guarded(*args, **kwargs):
        tick()
        if textual:
            _need_text(*(arg for arg in (*args[skip:], *kwargs.values()) if not isinstance(arg, str)))
        return _check_size(function(*args, **kwargs))

    return guarded


def _text_test(test: Callable) -> Callable:
    """A test that reads its value as text (`is lower`), refusing a list or dict too long as text first."""

    @wraps(test)
    def checked(value):
        _need_text(value)
        return test(value)

    return checked


# Filters whose output is at most a small multiple of their input, kept as Jinja2 has them.
_SAFE_BUILTINS = (
    *("abs", "attr", "capitalize", "count", "d", "default", "dictsort", "first", "float", "filesizeformat"),
    *("groupby", "int", "items", "last", "length", "list", "lower", "map", "max", "min", "pprint", "random"),
    *("reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort", "string", "striptags", "title"),
    *("trim", "truncate", "unique", "upper", "urlencode", "wordcount"),
)
# Filters that never turn a list or dict they are given into text (join and sum check their items themselves).
_NOT_TEXTUAL = frozenset(
    {
        *("abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float", "filesizeformat"),
        *("groupby", "int", "items", "join", "last", "length", "list", "map", "max", "min", "random", "reject"),
        *("rejectattr", "reverse", "round", "select", "selectattr", "slice", "sort", "sum", "timestamp"),
        *("timestamp_ms", "unique"),
    }
)


def _filters_for(kind: MarkupKind) -> dict[str, Callable]:
    table: dict[str, Callable] = {name: BUILTIN_FILTERS[name] for name in _SAFE_BUILTINS}
    table.update(
        center=lambda value, width=80: str(value).center(_width(width)),
        indent=_indent,
        wordwrap=_wordwrap,
        format=_format,
        replace=_replace_for(kind),
        join=_join_for(kind),
        batch=lambda value, linecount, fill_with=None: BUILTIN_FILTERS["batch"](
            value, min(int(linecount), MAX_WIDTH), fill_with
        ),
        slice=lambda value, slices, fill_with=None: sync_do_slice(value, min(int(slices), MAX_WIDTH), fill_with),
        sum=_sum,
        tojson=_tojson_for(kind),
        raw=_as_is,
        safe=_as_is,
        escape=_escape_for(kind),
        e=_escape_for(kind),
        forceescape=lambda value: _as_is(escape_for(kind, str(value))),
        html=lambda value: _as_is(escape_html(str(value))),
        mrkdwn=lambda value: _as_is(escape_for(MarkupKind.MRKDWN, value)),
        markdown=lambda value: _as_is(escape_for(MarkupKind.MARKDOWN, value)),
        md=lambda value: _as_is(escape_for(MarkupKind.MARKDOWN, value)),
        lark_md=lambda value: _as_is(escape_for(MarkupKind.LARK_MD, value)),
        **filters.FILTERS,
    )
    if kind == MarkupKind.HTML:
        table.update(urlize=BUILTIN_FILTERS["urlize"], xmlattr=BUILTIN_FILTERS["xmlattr"])
    return {name: _guarded(function, textual=name not in _NOT_TEXTUAL) for name, function in table.items()}


def _escape_for(kind: MarkupKind) -> Callable:
    def escape(value):
        return value if hasattr(value, "__html__") else _as_is(escape_for(kind, value))

    return escape


def _indent(value, width=4, first=False, blank=False):
    indention = width if isinstance(width, str) else " " * _width(width)
    if len(indention) > MAX_WIDTH:
        raise BudgetExceeded(f"a width of more than {MAX_WIDTH} was refused")
    _need(len(value) + (str(value).count("\n") + 1) * len(indention))
    return BUILTIN_FILTERS["indent"](value, width, first, blank)


@pass_environment
def _wordwrap(env, value, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    width = max(int(width), 1)
    if wrapstring is not None and len(wrapstring) > 10:
        raise BudgetExceeded("a wrap string of more than 10 characters was refused")
    _need(len(value) + (len(value) // width + 1) * len(wrapstring or "\n"))
    return do_wordwrap(env, value, width, break_long_words, wrapstring, break_on_hyphens)


def _format(value, *args, **kwargs):
    _check_percent_format(str(value), kwargs or args)
    return BUILTIN_FILTERS["format"](value, *args, **kwargs)


def _marked(kind: MarkupKind, value: Any) -> str:
    """`value` as marked-up text of `kind`: as it is when it is marked up already, else escaped."""
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return escape_for(kind, value)


def _replace_for(kind: MarkupKind) -> Callable:
    def replace(value, old, new, count=None):
        text = str(value)
        occurrences = text.count(str(old)) if str(old) else len(text) + 1
        if count is not None:
            occurrences = min(occurrences, int(count))
        _need(len(text) + occurrences * max(len(str(new)) - len(str(old)), 0))
        count = -1 if count is None else int(count)
        if hasattr(value, "__html__"):
            return _as_is(text.replace(_marked(kind, old), _marked(kind, new), count))
        return text.replace(str(old), str(new), count)

    return replace


def _join_for(kind: MarkupKind) -> Callable:
    def join(value, d="", attribute=None):
        items = list(budget_iter(value))
        if attribute is not None:
            items = [item.get(attribute) if isinstance(item, dict) else getattr(item, attribute, "") for item in items]
        _need_text(*items)
        _need_text(d)
        texts = [item if isinstance(item, str) else str(item) for item in items]
        separator = d if isinstance(d, str) else str(d)
        _need(sum(map(len, texts)) + len(separator) * max(len(texts) - 1, 0))
        if hasattr(separator, "__html__") or any(hasattr(text, "__html__") for text in texts):
            return _as_is(_marked(kind, separator).join(_marked(kind, text) for text in texts))
        return separator.join(texts)

    return join


def _sum(iterable, attribute=None, start=0):
    total = start
    for item in budget_iter(iterable):
        value = item.get(attribute) if attribute is not None and isinstance(item, dict) else item
        if not isinstance(value, (int, float)) or not isinstance(total, (int, float)):
            raise BudgetExceeded("sum adds numbers only")
        total += value
    return total


def _tojson_for(kind: MarkupKind) -> Callable:
    def tojson(value, indent=None):
        if indent is not None:
            width = _width(len(indent) if isinstance(indent, str) else indent)
            _need_text(value, indent=max(width, 0))
        text = to_json(value, indent=indent)
        if kind == MarkupKind.HTML:
            # Safe inside a <script> or an HTML attribute, as Jinja2's own tojson is.
            text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            text = text.replace("'", "\\u0027")
        return _as_is(text)

    return tojson


@cache
def environment(kind: MarkupKind) -> TemplateSandbox:
    return TemplateSandbox(kind)


__all__ = [
    "MAX_SOURCE_CHARS",
    "RENDER_SECONDS",
    "BudgetExceeded",
    "TemplateSandbox",
    "budget_scope",
    "environment",
    "json_default",
    "tick",
]
