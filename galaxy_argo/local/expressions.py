"""The embedded engine's expression layer: template tags, expr-lang, ``depends`` and ``when``. Pure.

Four small languages, each implemented the way Argo evaluates it, without Python's ``eval``:

* Simple template tags, ``{{inputs.parameters.message}}``, looked up in a *flat* scope keyed by the
  full dotted name, as Argo's ``replaceMap`` is
  (https://argo-workflows.readthedocs.io/en/latest/variables/). Single pass: a substituted value is
  never re-scanned for tags.
* Expression tags, ``{{=asInt(inputs.parameters.x) + 1}}``, and ``retryStrategy.expression``: the
  subset of expr-lang (https://expr-lang.org/docs/language-definition) that Argo workflows use,
  parsed by recursive descent with expr's operator precedences and evaluated over plain dicts.
* DAG ``depends`` (https://argo-workflows.readthedocs.io/en/latest/enhanced-depends-logic/): task
  results combined with ``&&``, ``||`` and ``!``, as Argo's ``evaluateDependsLogic`` builds them.
* Step and task ``when`` after substitution: Argo hands it to govaluate with every variable turned
  into a string, so ``tails == heads`` compares two words
  (https://argo-workflows.readthedocs.io/en/latest/walk-through/conditionals/).

Decisions on types, where expr-lang, govaluate and Argo leave room:

* expr (`evaluate`): no implicit coercion. ``1 == '1'`` is false and ``'1' < 2`` is a type error,
  as in expr; ``true`` is not the number 1. ``/`` always gives a float and ``%`` takes integers.
  ``lastRetry.exitCode`` and ``lastRetry.duration`` are strings in Argo's retry environment (so the
  engine passes them as strings): compare with ``asInt(lastRetry.exitCode) == 1``.
* Unknown names, missing map keys included, raise `UnknownNameError` instead of giving ``nil`` as
  expr does for maps: ``tasks.A.outputs.result == 'x'`` must not resolve to ``false`` before A has
  run. ``a ?? b`` gives ``b`` when ``a`` is nil *or* unknown, which is how a default is written.
* A member name after ``.`` may contain hyphens (``steps.generate-parameter.outputs``) because Argo
  names steps, tasks and parameters that way; write ``a.b - c`` with spaces to subtract.
* ``when``: words that are not numbers, ``true`` or ``false`` are strings. Two operands that are
  both numeric (a number, or a quoted or bare string that reads as one) compare as numbers,
  anything else compares as text. This departs from govaluate where govaluate is unhelpful:
  ``"10" > "9"`` and ``5 == "5"`` are true here, and mixed types never raise, because after
  substitution quoting is the template author's accident, not a type declaration.
* Rendering a value into a template (`render_value`) follows Go's ``json.Marshal`` as Argo does:
  ints as ints, integral floats without ``.0``, ``true``/``false``, ``null``, and maps and lists as
  compact JSON with sorted keys; strings go in as they are.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "ExpressionError",
    "ExpressionSyntaxError",
    "FUNCTIONS",
    "PHASES",
    "UnknownNameError",
    "dependencies_to_depends",
    "depends_ready",
    "evaluate",
    "evaluate_depends",
    "evaluate_when",
    "render_value",
    "scope_to_env",
    "substitute",
    "substitute_obj",
]

T = TypeVar("T")


class ExpressionError(GalaxyArgoError, ValueError):
    """A template tag, expression, ``depends`` or ``when`` cannot be parsed or evaluated.

    The message quotes the expression and, when one applies, the 0-based offset of the problem, so
    a workflow author can find it in their YAML; the parts stay readable as attributes.
    """

    def __init__(
        self, expression: str, reason: str, position: int | None = None, *, kind: str = "expression"
    ) -> None:
        """Keep expression, reason and position apart for callers that report them separately."""
        self.expression = expression
        self.reason = reason
        self.position = position
        self.kind = kind
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{kind} {expression!r}: {reason}{where}")


class ExpressionSyntaxError(ExpressionError):
    """The text is not a valid expression: it will not resolve later either, so it always raises."""


class UnknownNameError(ExpressionError):
    """A variable, map key or template tag has no value (yet): the one error non-strict mode tolerates."""


# -- rendering ---------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Integral floats as ints, tuples as lists: what Go's encoder writes for the same values."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def render_value(value: Any) -> str:
    """Text of ``value`` inside a template, as Argo writes it.

    Strings are inserted verbatim; everything else is its Go ``json.Marshal`` form (compact, keys
    sorted as Go sorts map keys), so ``{{item}}`` of ``{"b": 1, "a": 2.0}`` is ``{"a":2,"b":1}``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # Go refuses to marshal these; a readable value beats an error here.
    return json.dumps(
        _jsonable(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str
    )


# -- simple tags -------------------------------------------------------------------------------------

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_MISSING: Final = object()


def _lookup(scope: Mapping[str, Any], name: str) -> Any:
    """Value of a dotted name, or `_MISSING`.

    The flat key wins; otherwise the longest present prefix is descended into, so ``item.key``
    reads ``scope["item"]["key"]`` when ``item`` is a map, as Argo's ``item.*`` variables do.
    """
    if name in scope:
        return scope[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix not in scope:
            continue
        value = scope[prefix]
        for part in parts[cut:]:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _MISSING
        return value
    return _MISSING


def _suggest(name: str, names: Iterable[str]) -> str:
    """A "did you mean" hint: a misspelt parameter is the usual reason a tag does not resolve."""
    close = difflib.get_close_matches(name, [n for n in names if not n.startswith("_")], n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def scope_to_env(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Nest a flat scope (``{"inputs.parameters.x": "1"}``) into maps for expr, like Argo's ``EnvMap``.

    Shorter keys are placed first and a non-map value keeps its place, so a deeper key under it
    is dropped rather than destroying it. Maps taken from the scope are copied before keys are
    added to them: the caller's scope is never changed.
    """
    env: dict[str, Any] = {}
    owned: set[int] = {id(env)}
    for key in sorted(scope, key=lambda k: k.count(".")):
        parts = key.split(".")
        node: dict[str, Any] | None = env
        for part in parts[:-1]:
            if node is None:
                break
            child = node.get(part, _MISSING)
            if child is _MISSING:
                child = {}
            elif isinstance(child, Mapping) and id(child) not in owned:
                child = dict(child)
            elif not isinstance(child, dict):
                node = None
                break
            owned.add(id(child))
            node[part] = child
            node = child
        if node is not None and parts[-1] not in node:
            node[parts[-1]] = scope[key]
    return env


def substitute(text: str, scope: Mapping[str, Any], *, strict: bool = True) -> str:
    """Replace every ``{{name}}`` and ``{{=expression}}`` tag in ``text`` from ``scope``.

    Args:
        text: The template text; tags may have whitespace inside the braces.
        scope: Flat map from full dotted names to values, as Argo builds it; a map value also
            answers the names below it (``item.key``).
        strict: Raise on a tag that does not resolve. When false, such tags are left untouched for
            a later pass, as Argo leaves ``{{workflow.status}}`` until the exit handler runs.
            That covers ``{{=...}}`` reading an unknown name or giving nil; a syntax or type
            error in one cannot be cured by a later pass and raises either way.

    Returns:
        The text with resolved tags replaced by `render_value` of their values.

    Raises:
        UnknownNameError: ``strict`` and a tag names nothing in ``scope``.
        ExpressionError: An expression tag is malformed or fails to evaluate.
    """
    env: dict[str, Any] | None = None

    def replace(match: re.Match[str]) -> str:
        nonlocal env
        tag = match.group(1).strip()
        if tag.startswith("="):
            if env is None:
                env = scope_to_env(scope)
            try:
                result = evaluate(tag[1:], env)
            except UnknownNameError:
                if strict:
                    raise
                return match.group(0)
            if result is None:
                if strict:
                    raise UnknownNameError(
                        tag[1:], "evaluated to nil, which cannot be written into a template"
                    )
                return match.group(0)
            return render_value(result)
        value = _lookup(scope, tag)
        if value is _MISSING:
            if strict:
                raise UnknownNameError(
                    match.group(0),
                    f"no variable {tag!r} in scope{_suggest(tag, list(scope))}",
                    kind="template tag",
                )
            return match.group(0)
        return render_value(value)

    return _TAG.sub(replace, text)


def substitute_obj(obj: T, scope: Mapping[str, Any], *, strict: bool = True) -> T:
    """`substitute` every string inside nested dicts and lists; keys and other values stay as they are.

    Returns a new structure, so a template stored in the workflow is never changed in place.
    """
    if isinstance(obj, str):
        return substitute(obj, scope, strict=strict)  # type: ignore[return-value]
    if isinstance(obj, dict):
        return {k: substitute_obj(v, scope, strict=strict) for k, v in obj.items()}  # type: ignore[return-value]
    if isinstance(obj, list):
        return [substitute_obj(v, scope, strict=strict) for v in obj]  # type: ignore[return-value]
    if isinstance(obj, tuple):
        return tuple(substitute_obj(v, scope, strict=strict) for v in obj)  # type: ignore[return-value]
    return obj


# -- tokens and syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Member:
    obj: _Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Index:
    obj: _Node
    index: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Cond:
    test: _Node
    then: _Node
    otherwise: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[_Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class _Map:
    items: tuple[tuple[str, _Node], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class _Task:
    """A ``depends`` operand: ``task`` or ``task.Result``."""

    task: str
    result: str | None
    pos: int


_Node = _Lit | _Var | _Member | _Index | _Call | _Unary | _Binary | _Cond | _List | _Map | _Task

_EXPR: Final = "expr"
_WHEN: Final = "when"

_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?")
_WHEN_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_]+(?:-+[A-Za-z0-9_]+)*")
_WORD = re.compile(r"[\w.\-]+")
#: Operator tokens per dialect, two-character ones first so that ``<=`` is not read as ``<``.
_OPERATORS: Final = {
    _EXPR: tuple("** == != <= >= && || ?? < > + - * / % ! ( ) [ ] { } , : ? .".split()),
    _WHEN: tuple("** == != <= >= && || =~ !~ < > + - * / % ! ( ) , : ?".split()),
}
_SIMPLE_ESCAPES: Final = dict(zip("ntrabfv\\'\"", "\n\t\r\a\b\f\v\\'\"", strict=True))
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}

#: expr's binary operators: precedence and right-associativity (expr-lang ``parser/operator``);
#: ``=~`` and ``!~`` are govaluate's, for ``when``.
_BINARY: Final = {
    **dict.fromkeys(("||", "or"), (10, False)),
    **dict.fromkeys(("&&", "and"), (15, False)),
    **dict.fromkeys(
        ("==", "!=", "<", ">", "<=", ">=", "in", "matches", "contains", "startsWith", "endsWith", "=~", "!~"),
        (20, False),
    ),
    **dict.fromkeys(("+", "-"), (30, False)),
    **dict.fromkeys(("*", "/", "%"), (60, False)),
    "**": (100, True),
    "??": (500, False),
}
_UNARY: Final = {"!": 50, "not": 50, "-": 90, "+": 90}
_WORD_OPERATORS: Final = {
    _EXPR: frozenset({"or", "and", "in", "matches", "contains", "startsWith", "endsWith"}),
    _WHEN: frozenset({"in"}),
}
_NEGATABLE: Final = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
_CONSTANTS: Final[dict[str, dict[str, Any]]] = {
    _EXPR: {"true": True, "false": False, "nil": None},
    _WHEN: {"true": True, "false": False},
}
_LABEL: Final = {_EXPR: "expression", _WHEN: "when"}


def _read_string(source: str, start: int, label: str) -> tuple[str, int]:
    """Decode the quoted string at ``start`` with Go's escapes; returns the text and the end offset."""
    quote = source[start]
    out: list[str] = []
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == quote:
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(source):
            break
        esc = source[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in _HEX_ESCAPES:
            digits = source[i + 2 : i + 2 + _HEX_ESCAPES[esc]]
            if len(digits) != _HEX_ESCAPES[esc] or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ExpressionSyntaxError(source, f"bad \\{esc} escape in string", i, kind=label)
            try:
                out.append(chr(int(digits, 16)))
            except (ValueError, OverflowError) as err:
                raise ExpressionSyntaxError(source, f"bad \\{esc} escape in string", i, kind=label) from err
            i += 2 + len(digits)
        elif re.fullmatch(r"[0-7]{3}", source[i + 1 : i + 4]):
            out.append(chr(int(source[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise ExpressionSyntaxError(source, f"unknown escape \\{esc} in string", i, kind=label)
    raise ExpressionSyntaxError(source, "string is not terminated", start, kind=label)


def _number(text: str) -> int | float:
    """Python value of a number token; underscores separate digits as in expr."""
    if text[:2].lower() == "0x":
        return int(text, 16)
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text, 10)


def _tokenize(source: str, dialect: str) -> list[_Token]:
    """Split ``source`` into tokens; the dialect decides names, operators and barewords."""
    label = _LABEL[dialect]
    operators = _OPERATORS[dialect]
    tokens: list[_Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
            continue
        after_dot = dialect == _EXPR and bool(tokens) and tokens[-1].kind == "op" and tokens[-1].text == "."
        if after_dot:
            match = _MEMBER_NAME.match(source, i)
            if not match:
                raise ExpressionSyntaxError(source, "expected a member name after '.'", i, kind=label)
            tokens.append(_Token("name", match.group(), match.group(), i))
            i = match.end()
            continue
        if char in "'\"":
            text, end = _read_string(source, i, label)
            tokens.append(_Token("str", source[i:end], text, i))
            i = end
            continue
        if dialect == _WHEN and (char.isalnum() or char == "_"):
            match = _WHEN_NUMBER.match(source, i)
            if match:
                tokens.append(_Token("num", match.group(), _number(match.group()), i))
            else:
                match = _WORD.match(source, i)
                if match is None:  # pragma: no cover - the first character always matches
                    raise ExpressionSyntaxError(source, "unexpected character", i, kind=label)
                tokens.append(_Token("name", match.group(), match.group(), i))
            i = match.end()
            continue
        if "0" <= char <= "9" and (match := _NUMBER.match(source, i)):
            try:
                value = _number(match.group())
            except ValueError as err:
                raise ExpressionSyntaxError(source, f"bad number {match.group()!r}", i, kind=label) from err
            tokens.append(_Token("num", match.group(), value, i))
            i = match.end()
            continue
        match = _IDENT.match(source, i)
        if match:
            tokens.append(_Token("name", match.group(), match.group(), i))
            i = match.end()
            continue
        op = next((o for o in operators if source.startswith(o, i)), None)
        if op is None:
            raise ExpressionSyntaxError(source, f"unexpected character {char!r}", i, kind=label)
        tokens.append(_Token("op", op, op, i))
        i += len(op)
    tokens.append(_Token("end", "", None, len(source)))
    return tokens


class _Parser:
    """Recursive descent with precedence climbing, the shape of expr-lang's own parser."""

    def __init__(self, source: str, dialect: str) -> None:
        self.source = source
        self.dialect = dialect
        self.label = _LABEL[dialect]
        self.tokens = _tokenize(source, dialect)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def fail(self, reason: str, token: _Token | None = None) -> ExpressionSyntaxError:
        token = token or self.token
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return ExpressionSyntaxError(self.source, f"{reason}, found {found}", token.pos, kind=self.label)

    def is_op(self, *texts: str) -> bool:
        return self.token.kind == "op" and self.token.text in texts

    def expect(self, text: str) -> _Token:
        if not self.is_op(text):
            raise self.fail(f"expected {text!r}")
        token = self.token
        self.at += 1
        return token

    def parse(self) -> _Node:
        if self.token.kind == "end":
            raise self.fail("empty expression")
        node = self.conditional()
        if self.token.kind != "end":
            raise self.fail("expected an operator or the end")
        return node

    def conditional(self) -> _Node:
        node = self.binary(0)
        if self.is_op("?"):
            pos = self.token.pos
            self.at += 1
            then = self.conditional()
            self.expect(":")
            return _Cond(node, then, self.conditional(), pos)
        return node

    def binary_operator(self) -> tuple[str, int] | None:
        """The binary operator at the cursor and how many tokens it takes (``not in`` takes two)."""
        token = self.token
        if token.kind == "op" and token.text in _BINARY:
            return token.text, 1
        if token.kind == "name" and token.text in _WORD_OPERATORS[self.dialect]:
            return token.text, 1
        if self.dialect == _EXPR and token.kind == "name" and token.text == "not":
            following = self.tokens[self.at + 1]
            if following.kind == "name" and following.text in _NEGATABLE:
                return f"not {following.text}", 2
        return None

    def binary(self, min_precedence: int) -> _Node:
        node = self.unary()
        while (found := self.binary_operator()) is not None:
            op, width = found
            precedence, right = _BINARY[op.removeprefix("not ")]
            if precedence < min_precedence:
                break
            pos = self.token.pos
            self.at += width
            node = _Binary(op, node, self.binary(precedence if right else precedence + 1), pos)
        return node

    def unary(self) -> _Node:
        token = self.token
        is_word_not = self.dialect == _EXPR and token.kind == "name" and token.text == "not"
        if is_word_not or (token.kind == "op" and token.text in ("!", "-", "+")):
            self.at += 1
            return _Unary(token.text, self.binary(_UNARY[token.text]), token.pos)
        return self.postfix(self.primary())

    def primary(self) -> _Node:
        token = self.token
        self.at += 1
        if token.kind in ("num", "str"):
            return _Lit(token.value, token.pos)
        if token.kind == "name":
            constants = _CONSTANTS[self.dialect]
            if token.text in constants:
                return _Lit(constants[token.text], token.pos)
            if self.dialect == _WHEN:
                return _Lit(token.text, token.pos)  # a bareword: Argo turns govaluate variables into strings
            if token.text in _WORD_OPERATORS[_EXPR] or token.text == "not":
                raise self.fail("expected a value", token)
            return _Var(token.text, token.pos)
        if token.kind == "op" and token.text == "(":
            node = self.conditional()
            if self.dialect == _WHEN and self.is_op(","):
                items = [node]
                while self.is_op(","):
                    self.at += 1
                    items.append(self.conditional())
                node = _List(tuple(items), token.pos)
            self.expect(")")
            return node
        if self.dialect == _EXPR and token.kind == "op" and token.text == "[":
            return _List(tuple(self.sequence("]")), token.pos)
        if self.dialect == _EXPR and token.kind == "op" and token.text == "{":
            return self.map_literal(token)
        raise self.fail("expected a value", token)

    def sequence(self, close: str) -> list[_Node]:
        items: list[_Node] = []
        while not self.is_op(close):
            items.append(self.conditional())
            if not self.is_op(close):
                self.expect(",")
        self.expect(close)
        return items

    def map_literal(self, opening: _Token) -> _Map:
        items: list[tuple[str, _Node]] = []
        while not self.is_op("}"):
            key = self.token
            if key.kind not in ("name", "str", "num"):
                raise self.fail("expected a map key")
            self.at += 1
            self.expect(":")
            items.append((str(key.value), self.conditional()))
            if not self.is_op("}"):
                self.expect(",")
        self.expect("}")
        return _Map(tuple(items), opening.pos)

    def postfix(self, node: _Node) -> _Node:
        if self.dialect != _EXPR:
            return node
        while True:
            token = self.token
            if self.is_op("."):
                self.at += 1
                if self.token.kind != "name":
                    raise self.fail("expected a member name after '.'")
                node = _Member(node, self.token.text, self.token.pos)
                self.at += 1
            elif self.is_op("["):
                self.at += 1
                index = self.conditional()
                self.expect("]")
                node = _Index(node, index, token.pos)
            elif self.is_op("("):
                name = _dotted(node)
                if name is None:
                    raise self.fail("only named functions can be called", token)
                self.at += 1
                node = _Call(name, tuple(self.sequence(")")), _start(node))
            else:
                return node


def _start(node: _Node) -> int:
    """Offset where a member chain begins: errors in ``sprig.upper(1)`` point at ``sprig``."""
    while isinstance(node, _Member | _Index):
        node = node.obj
    return node.pos


def _dotted(node: _Node) -> str | None:
    """``a.b.c`` for a chain of plain member accesses, else None: names functions and errors."""
    if isinstance(node, _Var):
        return node.name
    if isinstance(node, _Member):
        base = _dotted(node.obj)
        return None if base is None else f"{base}.{node.name}"
    return None


# -- values ------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _expr_equal(left: Any, right: Any) -> bool:
    """Expr's ``==``: numbers by value across int and float, otherwise same type and same value."""
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if _type_name(left) != _type_name(right):
        return False
    return bool(left == right)


def _as_int(value: Any) -> int:
    """Expr's ``int()`` (Argo's ``asInt``): floats truncate, strings must be a whole decimal number."""
    if _is_number(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    raise TypeError(f"cannot convert {_type_name(value)} {value!r} to int")


def _as_float(value: Any) -> float:
    """Expr's ``float()`` (Argo's ``asFloat``): numbers, or a string that is exactly a number."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and value == value.strip():
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError(f"cannot convert {_type_name(value)} {value!r} to float")


_JSONPATH_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _jsonpath(document: Any, path: str) -> Any:
    """Argo's ``jsonpath(json, path)`` for plain paths: ``$``, ``.key``, ``['key']`` and ``[0]``.

    Filters and wildcards are not supported; they raise rather than return a wrong value.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as err:
            raise TypeError(f"first argument is not JSON: {err.msg}") from err
    if not isinstance(path, str) or not path.startswith("$"):
        raise TypeError(f"path {path!r} must start with '$'")
    value, at = document, 1
    while at < len(path):
        step = _JSONPATH_STEP.match(path, at)
        if step is None:
            raise TypeError(f"unsupported path syntax at {path[at:]!r} (only $.a.b[0] and ['k'])")
        key, index = step.group(1) or step.group(3) or step.group(4), step.group(2)
        if index is not None and isinstance(value, list):
            if not -len(value) <= int(index) < len(value):
                raise TypeError(f"index {index} out of range in {path!r}")
            value = value[int(index)]
        elif key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise TypeError(f"{path[: step.end()]!r} does not exist")
        at = step.end()
    return value


def _string(value: Any) -> str:
    return render_value(value)


def _length(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise TypeError(f"{_type_name(value)} has no length")


def _text_function(method: Callable[[str], str]) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {_type_name(value)}")
        return method(value)

    return apply


def _from_json(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_type_name(value)}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise TypeError(f"not JSON: {err.msg}") from err


_upper = _text_function(str.upper)
_lower = _text_function(str.lower)
_trim = _text_function(str.strip)

#: Functions an expression may call, by the name it calls them with; nothing else is callable.
FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "asInt": _as_int,
    "asFloat": _as_float,
    "int": _as_int,
    "float": _as_float,
    "string": _string,
    "len": _length,
    "upper": _upper,
    "lower": _lower,
    "trim": _trim,
    "jsonpath": _jsonpath,
    "toJson": render_value,
    "toJSON": render_value,
    "fromJSON": _from_json,
    "sprig.upper": _upper,
    "sprig.lower": _lower,
    "sprig.trim": _trim,
}
_ARITY: Final = {"jsonpath": 2}
_ORDER: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


# -- evaluation --------------------------------------------------------------------------------------


class _Evaluator:
    """Walk a syntax tree; ``dialect`` picks expr's strict typing or ``when``'s text comparisons."""

    def __init__(self, source: str, dialect: str, env: Mapping[str, Any]) -> None:
        self.source = source
        self.dialect = dialect
        self.label = _LABEL[dialect]
        self.env = env

    def error(self, reason: str, pos: int) -> ExpressionError:
        return ExpressionError(self.source, reason, pos, kind=self.label)

    def unknown(self, reason: str, pos: int) -> UnknownNameError:
        return UnknownNameError(self.source, reason, pos, kind=self.label)

    def boolean(self, node: _Node, role: str) -> bool:
        value = self.eval(node)
        if not isinstance(value, bool):
            raise self.error(f"{role} must be a bool, got {_type_name(value)} {value!r}", node.pos)
        return value

    def eval(self, node: _Node) -> Any:
        match node:
            case _Lit(value=value):
                return value
            case _Var(name=name, pos=pos):
                if name not in self.env:
                    raise self.unknown(f"unknown name {name!r}{_suggest(name, list(self.env))}", pos)
                return self.env[name]
            case _Member(obj=obj, name=name, pos=pos):
                return self.member(self.eval(obj), name, node, pos)
            case _Index(obj=obj, index=index, pos=pos):
                return self.index(self.eval(obj), self.eval(index), node, pos)
            case _Call(name=name, args=args, pos=pos):
                return self.call(name, args, pos)
            case _Unary(op=op, operand=operand, pos=pos):
                if op in ("!", "not"):
                    return not self.boolean(operand, f"operand of {op!r}")
                value = self.number(self.eval(operand), op, operand.pos)
                return -value if op == "-" else value
            case _Binary(op=op, left=left, right=right, pos=pos):
                return self.binary(op, left, right, pos)
            case _Cond(test=test, then=then, otherwise=otherwise):
                return self.eval(then) if self.boolean(test, "condition of '?:'") else self.eval(otherwise)
            case _List(items=items):
                return [self.eval(item) for item in items]
            case _Map(items=items):
                return {key: self.eval(value) for key, value in items}
        raise self.error(f"cannot evaluate {type(node).__name__}", node.pos)  # pragma: no cover

    def path(self, node: _Node) -> str:
        """How the user wrote the accessed value, for "unknown name" messages."""
        match node:
            case _Var(name=name):
                return name
            case _Member(obj=obj, name=name):
                return f"{self.path(obj)}.{name}"
            case _Index(obj=obj, index=_Lit(value=value)):
                return f"{self.path(obj)}[{value!r}]"
        return "value"

    def member(self, obj: Any, name: str, node: _Node, pos: int) -> Any:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
            raise self.unknown(f"unknown name {self.path(node)!r}{_suggest(name, list(obj))}", pos)
        if isinstance(obj, list | tuple) and name.isdigit():
            return self.index(obj, int(name), node, pos)
        raise self.error(f"cannot read .{name} of {_type_name(obj)}", pos)

    def index(self, obj: Any, key: Any, node: _Node, pos: int) -> Any:
        if isinstance(obj, Mapping):
            if not isinstance(key, str):
                raise self.error(f"map key must be a string, got {_type_name(key)}", pos)
            if key in obj:
                return obj[key]
            raise self.unknown(f"unknown name {self.path(node)!r}{_suggest(key, list(obj))}", pos)
        if isinstance(obj, str | list | tuple):
            if not isinstance(key, int) or isinstance(key, bool):
                raise self.error(f"{_type_name(obj)} index must be an int, got {_type_name(key)}", pos)
            if not -len(obj) <= key < len(obj):
                raise self.error(f"index {key} out of range for {_type_name(obj)} of length {len(obj)}", pos)
            return obj[key]
        raise self.error(f"cannot index {_type_name(obj)}", pos)

    def call(self, name: str, args: tuple[_Node, ...], pos: int) -> Any:
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.error(f"unknown function {name!r}; available: {', '.join(sorted(FUNCTIONS))}", pos)
        arity = _ARITY.get(name, 1)
        if len(args) != arity:
            raise self.error(
                f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}", pos
            )
        values = [self.eval(arg) for arg in args]
        try:
            return function(*values)
        except (TypeError, ValueError) as err:
            raise self.error(f"{name}(): {err}", pos) from err

    def number(self, value: Any, op: str, pos: int) -> int | float:
        if self.dialect == _WHEN and isinstance(value, str) and (parsed := _parse_number(value)) is not None:
            return parsed
        if not _is_number(value):
            raise self.error(f"{op!r} needs a number, got {_type_name(value)} {value!r}", pos)
        return value

    def binary(self, op: str, left_node: _Node, right_node: _Node, pos: int) -> Any:
        if op in ("&&", "and"):
            return self.boolean(left_node, f"left of {op!r}") and self.boolean(right_node, f"right of {op!r}")
        if op in ("||", "or"):
            return self.boolean(left_node, f"left of {op!r}") or self.boolean(right_node, f"right of {op!r}")
        if op == "??":
            try:
                left = self.eval(left_node)
            except UnknownNameError:
                left = None
            return self.eval(right_node) if left is None else left
        left, right = self.eval(left_node), self.eval(right_node)
        if op.startswith("not "):
            return not self.predicate(op[4:], left, right, pos)
        if op in ("==", "!="):
            equal = self.equal(left, right)
            return equal if op == "==" else not equal
        if op in ("<", ">", "<=", ">="):
            return self.order(op, left, right, pos)
        if op in _NEGATABLE or op in ("=~", "!~"):
            return self.predicate(op, left, right, pos)
        return self.arithmetic(op, left, right, pos)

    def equal(self, left: Any, right: Any) -> bool:
        if self.dialect == _EXPR:
            return _expr_equal(left, right)
        numbers = _when_numbers(left, right)
        if numbers is not None:
            return numbers[0] == numbers[1]
        return render_value(left) == render_value(right)

    def order(self, op: str, left: Any, right: Any, pos: int) -> bool:
        a: Any
        b: Any
        if self.dialect == _WHEN:
            numbers = _when_numbers(left, right)
            a, b = numbers if numbers is not None else (render_value(left), render_value(right))
        elif (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            a, b = left, right
        else:
            raise self.error(f"cannot compare {_type_name(left)} {op} {_type_name(right)}", pos)
        return bool(_ORDER[op](a, b))

    def predicate(self, op: str, left: Any, right: Any, pos: int) -> bool:
        if op == "in":
            if isinstance(right, list | tuple):
                return any(self.equal(left, item) for item in right)
            if isinstance(right, Mapping):
                return isinstance(left, str) and left in right
            if right is None:
                return False
            raise self.error(f"'in' needs an array or a map on the right, got {_type_name(right)}", pos)
        if self.dialect == _WHEN:
            left, right = render_value(left), render_value(right)
        if not (isinstance(left, str) and isinstance(right, str)):
            raise self.error(f"{op!r} needs two strings, got {_type_name(left)} and {_type_name(right)}", pos)
        if op == "contains":
            return right in left
        if op == "startsWith":
            return left.startswith(right)
        if op == "endsWith":
            return left.endswith(right)
        try:
            found = re.search(right, left) is not None
        except re.error as err:
            raise self.error(f"bad regular expression {right!r}: {err.msg}", pos) from err
        return found if op != "!~" else not found

    def arithmetic(self, op: str, left: Any, right: Any, pos: int) -> Any:
        if op == "+":
            if isinstance(left, str) and isinstance(right, str):
                if self.dialect == _EXPR or _when_numbers(left, right) is None:
                    return left + right
            if self.dialect == _EXPR and isinstance(left, list | tuple) and isinstance(right, list | tuple):
                return [*left, *right]
            if self.dialect == _WHEN and _when_numbers(left, right) is None:
                return render_value(left) + render_value(right)
        a, b = self.number(left, op, pos), self.number(right, op, pos)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "**":
            try:
                return math.pow(a, b)
            except (OverflowError, ValueError) as err:
                raise self.error(f"{a} ** {b}: {err}", pos) from err
        if b == 0:
            raise self.error(f"division by zero in {op!r}", pos)
        if op == "/":
            return a / b
        if not (isinstance(a, int) and isinstance(b, int)):
            raise self.error(f"'%' needs integers, got {_type_name(a)} and {_type_name(b)}", pos)
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder  # Go's remainder takes the dividend's sign


def _parse_number(text: str) -> int | float | None:
    """A ``when`` operand's numeric value, if the whole text is a (finite) number."""
    stripped = text.strip()
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", stripped):
        return float(stripped)
    return None


def _when_numbers(left: Any, right: Any) -> tuple[int | float, int | float] | None:
    """Both operands as numbers when both are numeric (numbers or number-like text), else None."""
    values = []
    for value in (left, right):
        if _is_number(value):
            values.append(value)
        elif isinstance(value, str) and (parsed := _parse_number(value)) is not None:
            values.append(parsed)
        else:
            return None
    return values[0], values[1]


def evaluate(expression: str, env: Mapping[str, Any]) -> Any:
    """Evaluate an expr-lang expression over ``env``, as Argo's ``{{=...}}`` and retry expressions do.

    Args:
        expression: expr-lang source, e.g. ``lastRetry.status == 'Error'``.
        env: Nested variables: ``{"inputs": {"parameters": {"x": "1"}}}``. `scope_to_env` builds it
            from a flat template scope.

    Returns:
        The value: str, int, float, bool, None, list or dict.

    Raises:
        ExpressionSyntaxError: The expression does not parse.
        UnknownNameError: It reads a variable or key that ``env`` does not have.
        ExpressionError: A type error (``'a' < 1``, ``!'x'``), a bad regex, an unknown function.
    """
    tree = _Parser(expression, _EXPR).parse()
    return _Evaluator(expression, _EXPR, env).eval(tree)


def evaluate_when(expression: str) -> bool:
    """Decide a step's or task's ``when`` after its tags were substituted.

    Barewords are strings, ``true``/``false`` booleans; comparisons are numeric when both sides are
    numeric and textual otherwise (see the module docstring for how that departs from govaluate).
    Supports ``== != < > <= >= && || ! =~ !~ in (a, b)``, arithmetic, ``? :`` and parentheses.

    An empty condition is true, as in Argo, where a tag that substituted to nothing leaves one.

    Raises:
        ExpressionError: It does not parse, or the result is not a boolean (``when: heads``).
    """
    if not expression.strip():
        return True
    tree = _Parser(expression, _WHEN).parse()
    result = _Evaluator(expression, _WHEN, {}).eval(tree)
    if not isinstance(result, bool):
        raise ExpressionError(
            expression, f"expected a boolean result, got {_type_name(result)} {result!r}", kind="when"
        )
    return result


# -- DAG depends -------------------------------------------------------------------------------------

#: Node phases Argo reports, plus ``Daemoned`` for a daemon task that is up (still ``Running`` in
#: Argo, with ``daemoned: true``; a depends-ready dependency all the same).
PHASES: Final = frozenset(
    {"Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Omitted", "Daemoned"}
)
#: Phases after which a dependency's result can no longer change.
_COMPLETED: Final = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted", "Daemoned"})
_RESULTS: Final = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<task>[A-Za-z0-9_][A-Za-z0-9_\-]*)"
    r"(?:\.(?P<result>[A-Za-z]+))?)"
)


def _parse_depends(expression: str) -> _Node | None:
    """Syntax tree of a ``depends`` expression; None when it is empty (no dependencies)."""
    tokens: list[tuple[str, str, str | None, int]] = []
    at = 0
    while at < len(expression):
        if expression[at:].strip() == "":
            break
        match = _DEPENDS_TOKEN.match(expression, at)
        if match is None:
            bad = len(expression[at:]) - len(expression[at:].lstrip()) + at
            raise ExpressionSyntaxError(
                expression,
                f"unexpected {expression[bad]!r}; expected a task, "
                "task.Result, '&&', '||', '!' or parentheses",
                bad,
                kind="depends",
            )
        start = match.start("op") if match.group("op") else match.start("task")
        if match.group("op"):
            tokens.append(("op", match.group("op"), None, start))
        else:
            tokens.append(("task", match.group("task"), match.group("result"), start))
        at = match.end()
    if not tokens:
        return None
    tokens.append(("end", "", None, len(expression)))
    cursor = 0

    def fail(reason: str) -> ExpressionSyntaxError:
        kind, text, _, pos = tokens[cursor]
        found = "end of expression" if kind == "end" else repr(text)
        return ExpressionSyntaxError(expression, f"{reason}, found {found}", pos, kind="depends")

    def either() -> _Node:
        nonlocal cursor
        node = both()
        while tokens[cursor][:2] == ("op", "||"):
            pos = tokens[cursor][3]
            cursor += 1
            node = _Binary("||", node, both(), pos)
        return node

    def both() -> _Node:
        nonlocal cursor
        node = negation()
        while tokens[cursor][:2] == ("op", "&&"):
            pos = tokens[cursor][3]
            cursor += 1
            node = _Binary("&&", node, negation(), pos)
        return node

    def negation() -> _Node:
        nonlocal cursor
        kind, text, result, pos = tokens[cursor]
        if (kind, text) == ("op", "!"):
            cursor += 1
            return _Unary("!", negation(), pos)
        if (kind, text) == ("op", "("):
            cursor += 1
            node = either()
            if tokens[cursor][:2] != ("op", ")"):
                raise fail("expected ')'")
            cursor += 1
            return node
        if kind == "task":
            if result is not None and result not in _RESULTS:
                raise ExpressionSyntaxError(
                    expression,
                    f"unknown task result {result!r}; expected one of {', '.join(_RESULTS)}",
                    pos,
                    kind="depends",
                )
            cursor += 1
            return _Task(text, result, pos)
        raise fail("expected a task")

    node = either()
    if tokens[cursor][0] != "end":
        raise fail("expected '&&', '||' or the end")
    return node


def _depends_tasks(node: _Node | None) -> Iterator[_Task]:
    if isinstance(node, _Task):
        yield node
    elif isinstance(node, _Unary):
        yield from _depends_tasks(node.operand)
    elif isinstance(node, _Binary):
        yield from _depends_tasks(node.left)
        yield from _depends_tasks(node.right)


def _phase(expression: str, ref: _Task, tasks: Mapping[str, str]) -> str:
    if ref.task not in tasks:
        raise UnknownNameError(
            expression,
            f"unknown task {ref.task!r}; tasks: {', '.join(sorted(tasks))}",
            ref.pos,
            kind="depends",
        )
    phase = tasks[ref.task]
    if phase not in PHASES:
        raise ExpressionError(
            expression,
            f"task {ref.task!r} has unknown phase {phase!r}; expected one of {', '.join(sorted(PHASES))}",
            ref.pos,
            kind="depends",
        )
    return phase


def depends_ready(expression: str, tasks: Mapping[str, str]) -> bool:
    """Whether every task ``expression`` mentions has completed, so that its value is final.

    Argo waits for all of a task's dependencies to be fulfilled before evaluating ``depends``; the
    engine calls this first and `evaluate_depends` only when it is true. An empty expression is
    ready.

    Args:
        expression: The task's ``depends``.
        tasks: Task name -> node phase for every task in the DAG (``Pending`` if not started).

    Raises:
        ExpressionError: The expression does not parse, names a task not in ``tasks`` or a
            mentioned task has a phase Argo does not have.
    """
    phases = [_phase(expression, ref, tasks) for ref in _depends_tasks(_parse_depends(expression))]
    return all(phase in _COMPLETED for phase in phases)  # every name checked, even after a pending one


def evaluate_depends(
    expression: str, tasks: Mapping[str, str], children: Mapping[str, Sequence[str]] | None = None
) -> bool:
    """Value of a DAG task's ``depends`` given the phases of the tasks it names.

    Results are those of Argo's ``TaskResults``: ``A.Succeeded``, ``A.Failed``, ``A.Errored`` (phase
    ``Error``), ``A.Skipped``, ``A.Omitted``, ``A.Daemoned``; a bare ``A`` means
    ``(A.Succeeded || A.Skipped || A.Daemoned)``. ``A.AnySucceeded`` / ``A.AllFailed`` look at the
    phases of a fanned-out task's children when ``children`` has them; for a task without that
    entry its own phase stands in for one child (Argo gives false for a task that is not a
    TaskGroup; treating it as a group of one keeps the answer useful when the engine only knows
    the group's phase). A pending task satisfies no result: check `depends_ready` first.

    Args:
        expression: The ``depends`` text, e.g. ``(A || B.Failed) && C``; empty means true.
        tasks: Task name -> node phase.
        children: Optional task name -> phases of the children of a ``withItems``/``withParam`` task.

    Raises:
        ExpressionError: The expression does not parse, names an unknown task or result, or a
            phase is not one Argo reports.
    """
    tree = _parse_depends(expression)
    if tree is None:
        return True
    for ref in _depends_tasks(tree):  # a misspelt task fails now, not only when its branch is reached
        _phase(expression, ref, tasks)

    def result(ref: _Task) -> bool:
        phase = _phase(expression, ref, tasks)
        wanted = ref.result
        if wanted is None:
            return phase in ("Succeeded", "Skipped", "Daemoned")
        if wanted in ("AnySucceeded", "AllFailed"):
            phases = list(children[ref.task]) if children is not None and ref.task in children else [phase]
            for child in phases:
                if child not in PHASES:
                    raise ExpressionError(
                        expression,
                        f"a child of task {ref.task!r} has unknown phase {child!r}",
                        ref.pos,
                        kind="depends",
                    )
            if wanted == "AnySucceeded":
                return any(p == "Succeeded" for p in phases)
            return bool(phases) and all(p == "Failed" for p in phases)
        return phase == {"Errored": "Error"}.get(wanted, wanted)

    def value(node: _Node) -> bool:
        if isinstance(node, _Task):
            return result(node)
        if isinstance(node, _Unary):
            return not value(node.operand)
        if isinstance(node, _Binary):
            if node.op == "&&":
                return value(node.left) and value(node.right)
            return value(node.left) or value(node.right)
        raise ExpressionError(expression, "unexpected node", node.pos, kind="depends")  # pragma: no cover

    return value(tree)


def dependencies_to_depends(deps: Sequence[str]) -> str:
    """The ``depends`` equivalent of the legacy ``dependencies: [A, B]``: ``"A && B"`` (Argo's own rule).

    Raises:
        ExpressionError: A name is not a valid task name (it would change the expression's meaning).
    """
    if isinstance(deps, str):
        raise ExpressionError(
            repr(deps), "dependencies must be a list of task names, not a string", kind="dependencies"
        )
    for name in deps:
        if not isinstance(name, str) or not _TASK_NAME.fullmatch(name):
            raise ExpressionError(
                ", ".join(map(str, deps)), f"{name!r} is not a task name", kind="dependencies"
            )
    return " && ".join(deps)
