"""Syntax of expr-lang, ``when`` and ``depends``: one tokenizer, one parser, one syntax tree.

The dialects differ in their words (expr's names and numbers, ``when``'s barewords, ``depends``'
``task.Result``), their operators and a few productions; the loop that skips blanks and reads
operators, the precedence climbing, the syntax tree and the error messages are shared. One parser
means one set of positions and one way of reporting "expected ..., found ..." whichever field of
a workflow the text came from, and a ``depends`` tree that other code can walk
(`failures_handled_by_depends`) instead of scanning the text with a second set of rules.

The expr grammar is the subset of expr-lang (https://expr-lang.org/docs/language-definition) that
Argo workflows use, with expr's operator precedences; ``when`` is govaluate's as Argo uses it
(https://argo-workflows.readthedocs.io/en/latest/walk-through/conditionals/); ``depends`` is
Argo's enhanced depends logic
(https://argo-workflows.readthedocs.io/en/latest/enhanced-depends-logic/). A member name after
``.`` may contain hyphens (``steps.generate-parameter.outputs``) because Argo names steps, tasks
and parameters that way; write ``a.b - c`` with spaces to subtract.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from galaxy_argo.local.expressions.errors import ExpressionSyntaxError

__all__ = [
    "TASK_NAME",
    "TASK_RESULTS",
    "Binary",
    "Call",
    "Cond",
    "Dialect",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Member",
    "NEGATABLE",
    "Node",
    "Task",
    "Unary",
    "Var",
    "parse",
]


class Dialect(StrEnum):
    """Which language a text is in; the value is the word error messages start with."""

    #: expr-lang: ``{{=...}}`` tags and ``retryStrategy.expression``.
    EXPR = "expression"
    #: A step's or task's ``when`` after substitution: barewords are strings, as Argo makes them.
    WHEN = "when"
    #: A DAG task's ``depends``: task results combined with ``&&``, ``||``, ``!`` and parentheses.
    DEPENDS = "depends"


# -- syntax tree -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal: number, string, ``true``/``false``/``nil``, or a ``when`` bareword."""

    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Var:
    """A variable of the environment: ``inputs``."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Member:
    """``obj.name``."""

    obj: Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Index:
    """``obj[index]``."""

    obj: Node
    index: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a named function, ``name`` dotted as written: ``sprig.upper(x)``."""

    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    """``!x``, ``not x``, ``-x`` or ``+x``."""

    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right``; ``op`` is as written, ``not in`` included."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Cond:
    """``test ? then : otherwise``."""

    test: Node
    then: Node
    otherwise: Node
    pos: int


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[a, b]`` in expr, ``(a, b)`` in ``when``."""

    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class MapLit:
    """``{key: value, ...}``."""

    items: tuple[tuple[str, Node], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Task:
    """A ``depends`` operand: ``task`` (``result`` None) or ``task.Result``."""

    task: str
    result: str | None
    pos: int


Node = Lit | Var | Member | Index | Call | Unary | Binary | Cond | ListLit | MapLit | Task


# -- tokens ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    value: Any
    pos: int


#: A DAG task's name, as Argo allows it in ``depends``.
TASK_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
#: The results a ``depends`` operand may ask for (Argo's ``TaskResult``), in the order errors list them.
TASK_RESULTS: Final = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_TASK_OPERAND = re.compile(rf"(?P<task>{TASK_NAME.pattern})(?:\.(?P<result>[A-Za-z]+))?")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?")
_WHEN_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_]+(?:-+[A-Za-z0-9_]+)*")
_WORD = re.compile(r"[\w.\-]+")
_SIMPLE_ESCAPES: Final = dict(zip("ntrabfv\\'\"", "\n\t\r\a\b\f\v\\'\"", strict=True))
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}


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


def _string_token(source: str, i: int, tokens: list[_Token], label: str) -> int:
    text, end = _read_string(source, i, label)
    tokens.append(_Token("str", source[i:end], text, i))
    return end


def _expr_words(source: str, i: int, tokens: list[_Token]) -> int | None:
    """Read a member name, string, number or identifier at ``i`` into ``tokens``; the end, or None."""
    label = Dialect.EXPR.value
    if tokens and tokens[-1].kind == "op" and tokens[-1].text == ".":
        match = _MEMBER_NAME.match(source, i)
        if not match:
            raise ExpressionSyntaxError(source, "expected a member name after '.'", i, kind=label)
        tokens.append(_Token("name", match.group(), match.group(), i))
        return match.end()
    if source[i] in "'\"":
        return _string_token(source, i, tokens, label)
    if "0" <= source[i] <= "9" and (match := _NUMBER.match(source, i)):
        try:
            value = _number(match.group())
        except ValueError as err:
            raise ExpressionSyntaxError(source, f"bad number {match.group()!r}", i, kind=label) from err
        tokens.append(_Token("num", match.group(), value, i))
        return match.end()
    if match := _IDENT.match(source, i):
        tokens.append(_Token("name", match.group(), match.group(), i))
        return match.end()
    return None


def _when_words(source: str, i: int, tokens: list[_Token]) -> int | None:
    """Read a string, number or bareword at ``i``: any run of word characters, dots and hyphens."""
    label = Dialect.WHEN.value
    if source[i] in "'\"":
        return _string_token(source, i, tokens, label)
    if not (source[i].isalnum() or source[i] == "_"):
        return None
    match = _WHEN_NUMBER.match(source, i)
    if match:
        tokens.append(_Token("num", match.group(), _number(match.group()), i))
    else:
        match = _WORD.match(source, i)
        if match is None:  # pragma: no cover - the first character always matches
            raise ExpressionSyntaxError(source, "unexpected character", i, kind=label)
        tokens.append(_Token("name", match.group(), match.group(), i))
    return match.end()


def _depends_words(source: str, i: int, tokens: list[_Token]) -> int | None:
    """Read ``task`` or ``task.Result`` at ``i`` as a name, and a dot and a name for the result.

    The dot is a token only here, directly between a task and letters, so ``A.`` and
    ``A .Failed`` fail on an unexpected dot.
    """
    match = _TASK_OPERAND.match(source, i)
    if match is None:
        return None
    tokens.append(_Token("name", match["task"], match["task"], i))
    if match["result"] is not None:
        dot = match.start("result") - 1
        tokens.append(_Token("op", ".", ".", dot))
        tokens.append(_Token("name", match["result"], match["result"], dot + 1))
    return match.end()


@dataclass(frozen=True)
class _Grammar:
    """What sets a dialect apart: its words, operators, constants and how its errors read."""

    #: Appends the word tokens at an offset (names, numbers, strings) and returns the end, or None.
    words: Callable[[str, int, list[_Token]], int | None]
    #: Operator tokens, two-character ones first so that ``<=`` is not read as ``<``.
    operators: tuple[str, ...]
    #: Names that are binary operators (``in``, expr's ``and``...).
    word_operators: frozenset[str]
    #: Names that are values.
    constants: Mapping[str, Any]
    #: The message for a character that starts no token, formatted with its repr.
    unexpected: str
    #: What was expected where an operand is missing.
    operand: str
    #: What was expected after a complete operand.
    after_operand: str


_GRAMMARS: Final = {
    Dialect.EXPR: _Grammar(
        words=_expr_words,
        operators=tuple("** == != <= >= && || ?? < > + - * / % ! ( ) [ ] { } , : ? .".split()),
        word_operators=frozenset({"or", "and", "in", "matches", "contains", "startsWith", "endsWith"}),
        constants={"true": True, "false": False, "nil": None},
        unexpected="unexpected character {!r}",
        operand="expected a value",
        after_operand="expected an operator or the end",
    ),
    Dialect.WHEN: _Grammar(
        words=_when_words,
        operators=tuple("** == != <= >= && || =~ !~ < > + - * / % ! ( ) , : ?".split()),
        word_operators=frozenset({"in"}),
        constants={"true": True, "false": False},
        unexpected="unexpected character {!r}",
        operand="expected a value",
        after_operand="expected an operator or the end",
    ),
    Dialect.DEPENDS: _Grammar(
        words=_depends_words,
        operators=("&&", "||", "!", "(", ")"),
        word_operators=frozenset(),
        constants={},
        unexpected="unexpected {!r}; expected a task, task.Result, '&&', '||', '!' or parentheses",
        operand="expected a task",
        after_operand="expected '&&', '||' or the end",
    ),
}

#: expr's binary operators: precedence and right-associativity (expr-lang ``parser/operator``);
#: ``=~`` and ``!~`` are govaluate's, for ``when``. ``depends`` uses ``||`` and ``&&``.
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
#: expr's operators that ``not`` may precede: ``a not in b``.
NEGATABLE: Final = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})


def _tokenize(source: str, dialect: Dialect) -> list[_Token]:
    """Split ``source`` into tokens; the dialect decides names, operators and barewords."""
    grammar = _GRAMMARS[dialect]
    tokens: list[_Token] = []
    i = 0
    while i < len(source):
        if source[i].isspace():
            i += 1
            continue
        end = grammar.words(source, i, tokens)
        if end is None:
            op = next((o for o in grammar.operators if source.startswith(o, i)), None)
            if op is None:
                raise ExpressionSyntaxError(
                    source, grammar.unexpected.format(source[i]), i, kind=dialect.value
                )
            tokens.append(_Token("op", op, op, i))
            end = i + len(op)
        i = end
    tokens.append(_Token("end", "", None, len(source)))
    return tokens


# -- parser ------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent with precedence climbing, the shape of expr-lang's own parser."""

    def __init__(self, source: str, dialect: Dialect) -> None:
        self.source = source
        self.dialect = dialect
        self.grammar = _GRAMMARS[dialect]
        self.label = dialect.value
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

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("empty expression")
        node = self.conditional()
        if self.token.kind != "end":
            raise self.fail(self.grammar.after_operand)
        return node

    def conditional(self) -> Node:
        node = self.binary(0)
        if self.is_op("?"):
            pos = self.token.pos
            self.at += 1
            then = self.conditional()
            self.expect(":")
            return Cond(node, then, self.conditional(), pos)
        return node

    def binary_operator(self) -> tuple[str, int] | None:
        """The binary operator at the cursor and how many tokens it takes (``not in`` takes two)."""
        token = self.token
        if token.kind == "op" and token.text in _BINARY:
            return token.text, 1
        if token.kind == "name" and token.text in self.grammar.word_operators:
            return token.text, 1
        if self.dialect is Dialect.EXPR and token.kind == "name" and token.text == "not":
            following = self.tokens[self.at + 1]
            if following.kind == "name" and following.text in NEGATABLE:
                return f"not {following.text}", 2
        return None

    def binary(self, min_precedence: int) -> Node:
        node = self.unary()
        while (found := self.binary_operator()) is not None:
            op, width = found
            precedence, right = _BINARY[op.removeprefix("not ")]
            if precedence < min_precedence:
                break
            pos = self.token.pos
            self.at += width
            node = Binary(op, node, self.binary(precedence if right else precedence + 1), pos)
        return node

    def unary(self) -> Node:
        token = self.token
        is_word_not = self.dialect is Dialect.EXPR and token.kind == "name" and token.text == "not"
        if is_word_not or (token.kind == "op" and token.text in ("!", "-", "+")):
            self.at += 1
            return Unary(token.text, self.binary(_UNARY[token.text]), token.pos)
        return self.postfix(self.primary())

    def primary(self) -> Node:
        token = self.token
        self.at += 1
        if token.kind in ("num", "str"):
            return Lit(token.value, token.pos)
        if token.kind == "name":
            constants = self.grammar.constants
            if token.text in constants:
                return Lit(constants[token.text], token.pos)
            if self.dialect is Dialect.WHEN:
                return Lit(token.text, token.pos)  # a bareword: Argo turns govaluate variables into strings
            if self.dialect is Dialect.DEPENDS:
                return self.task(token)
            if token.text in self.grammar.word_operators or token.text == "not":
                raise self.fail("expected a value", token)
            return Var(token.text, token.pos)
        if token.kind == "op" and token.text == "(":
            node = self.conditional()
            if self.dialect is Dialect.WHEN and self.is_op(","):
                items = [node]
                while self.is_op(","):
                    self.at += 1
                    items.append(self.conditional())
                node = ListLit(tuple(items), token.pos)
            self.expect(")")
            return node
        if self.dialect is Dialect.EXPR and token.kind == "op" and token.text == "[":
            return ListLit(tuple(self.sequence("]")), token.pos)
        if self.dialect is Dialect.EXPR and token.kind == "op" and token.text == "{":
            return self.map_literal(token)
        raise self.fail(self.grammar.operand, token)

    def task(self, name: _Token) -> Task:
        """``task`` or ``task.Result``: the tokenizer emits a dot only between a task and a result."""
        result = None
        if self.is_op("."):
            result = self.tokens[self.at + 1].text
            if result not in TASK_RESULTS:
                raise ExpressionSyntaxError(
                    self.source,
                    f"unknown task result {result!r}; expected one of {', '.join(TASK_RESULTS)}",
                    name.pos,
                    kind=self.label,
                )
            self.at += 2
        return Task(name.text, result, name.pos)

    def sequence(self, close: str) -> list[Node]:
        items: list[Node] = []
        while not self.is_op(close):
            items.append(self.conditional())
            if not self.is_op(close):
                self.expect(",")
        self.expect(close)
        return items

    def map_literal(self, opening: _Token) -> MapLit:
        items: list[tuple[str, Node]] = []
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
        return MapLit(tuple(items), opening.pos)

    def postfix(self, node: Node) -> Node:
        if self.dialect is not Dialect.EXPR:
            return node
        while True:
            token = self.token
            if self.is_op("."):
                self.at += 1
                if self.token.kind != "name":
                    raise self.fail("expected a member name after '.'")
                node = Member(node, self.token.text, self.token.pos)
                self.at += 1
            elif self.is_op("["):
                self.at += 1
                index = self.conditional()
                self.expect("]")
                node = Index(node, index, token.pos)
            elif self.is_op("("):
                name = _dotted(node)
                if name is None:
                    raise self.fail("only named functions can be called", token)
                self.at += 1
                node = Call(name, tuple(self.sequence(")")), _start(node))
            else:
                return node


def _start(node: Node) -> int:
    """Offset where a member chain begins: errors in ``sprig.upper(1)`` point at ``sprig``."""
    while isinstance(node, Member | Index):
        node = node.obj
    return node.pos


def _dotted(node: Node) -> str | None:
    """``a.b.c`` for a chain of plain member accesses, else None: names functions and errors."""
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Member):
        base = _dotted(node.obj)
        return None if base is None else f"{base}.{node.name}"
    return None


@functools.lru_cache(maxsize=1024)
def parse(source: str, dialect: Dialect) -> Node:
    """The syntax tree of ``source`` in ``dialect``.

    Trees are immutable, so they are cached: the engine asks about the same ``depends``, ``when``
    and retry expression on every pass over a workflow.

    Raises:
        ExpressionSyntaxError: It does not parse, or is empty (callers for which empty means
            something, ``when`` and ``depends``, check for that first). The message starts with
            the dialect's name and ends with the offset of the offending token.
    """
    return _Parser(source, dialect).parse()
