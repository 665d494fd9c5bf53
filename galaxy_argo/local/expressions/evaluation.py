"""expr-lang evaluation: the functions Argo workflows call and the evaluator for expr and ``when``.

One tree walker serves both dialects because they share every operator; the dialect decides only
how values compare and combine, and Python's ``eval`` is never involved. The choices where
expr-lang, govaluate and Argo leave room:

* expr (`evaluate`): no implicit coercion. ``1 == '1'`` is false and ``'1' < 2`` is a type error,
  as in expr; ``true`` is not the number 1. ``/`` always gives a float and ``%`` takes integers.
  ``lastRetry.exitCode`` and ``lastRetry.duration`` are strings in Argo's retry environment (so the
  engine passes them as strings): compare with ``asInt(lastRetry.exitCode) == 1``.
* Unknown names, missing map keys included, raise `UnknownNameError` instead of giving ``nil`` as
  expr does for maps: ``tasks.A.outputs.result == 'x'`` must not resolve to ``false`` before A has
  run. ``a ?? b`` gives ``b`` when ``a`` is nil *or* unknown, which is how a default is written.
* ``when`` (`evaluate_when`): Argo hands it to govaluate after substitution with every variable
  turned into a string, so ``tails == heads`` compares two words
  (https://argo-workflows.readthedocs.io/en/latest/walk-through/conditionals/). Words that are not
  numbers, ``true`` or ``false`` are strings. Two operands that are both numeric (a number, or a
  quoted or bare string that reads as one) compare as numbers, anything else compares as text.
  This departs from govaluate where govaluate is unhelpful: ``"10" > "9"`` and ``5 == "5"`` are
  true here, and mixed types never raise, because after substitution quoting is the template
  author's accident, not a type declaration.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from galaxy_argo.local.expressions.errors import ExpressionError, UnknownNameError, suggest
from galaxy_argo.local.expressions.syntax import (
    NEGATABLE,
    Binary,
    Call,
    Cond,
    Dialect,
    Index,
    ListLit,
    Lit,
    MapLit,
    Member,
    Node,
    Unary,
    Var,
    parse,
)
from galaxy_argo.local.expressions.values import is_number, render_value, type_name

__all__ = ["FUNCTIONS", "evaluate", "evaluate_when"]


# -- functions ---------------------------------------------------------------------------------------


def _expr_equal(left: Any, right: Any) -> bool:
    """Expr's ``==``: numbers by value across int and float, otherwise same type and same value."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type_name(left) != type_name(right):
        return False
    return bool(left == right)


def _as_int(value: Any) -> int:
    """Expr's ``int()`` (Argo's ``asInt``): floats truncate, strings must be a whole decimal number."""
    if is_number(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    raise TypeError(f"cannot convert {type_name(value)} {value!r} to int")


def _as_float(value: Any) -> float:
    """Expr's ``float()`` (Argo's ``asFloat``): numbers, or a string that is exactly a number."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and value == value.strip():
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError(f"cannot convert {type_name(value)} {value!r} to float")


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
    raise TypeError(f"{type_name(value)} has no length")


def _text_function(method: Callable[[str], str]) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type_name(value)}")
        return method(value)

    return apply


def _from_json(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type_name(value)}")
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

    def __init__(self, source: str, dialect: Dialect, env: Mapping[str, Any]) -> None:
        self.source = source
        self.dialect = dialect
        self.label = dialect.value
        self.env = env

    def error(self, reason: str, pos: int) -> ExpressionError:
        return ExpressionError(self.source, reason, pos, kind=self.label)

    def unknown(self, reason: str, pos: int) -> UnknownNameError:
        return UnknownNameError(self.source, reason, pos, kind=self.label)

    def boolean(self, node: Node, role: str) -> bool:
        value = self.eval(node)
        if not isinstance(value, bool):
            raise self.error(f"{role} must be a bool, got {type_name(value)} {value!r}", node.pos)
        return value

    def eval(self, node: Node) -> Any:
        match node:
            case Lit(value=value):
                return value
            case Var(name=name, pos=pos):
                if name not in self.env:
                    raise self.unknown(f"unknown name {name!r}{suggest(name, list(self.env))}", pos)
                return self.env[name]
            case Member(obj=obj, name=name, pos=pos):
                return self.member(self.eval(obj), name, node, pos)
            case Index(obj=obj, index=index, pos=pos):
                return self.index(self.eval(obj), self.eval(index), node, pos)
            case Call(name=name, args=args, pos=pos):
                return self.call(name, args, pos)
            case Unary(op=op, operand=operand, pos=pos):
                if op in ("!", "not"):
                    return not self.boolean(operand, f"operand of {op!r}")
                value = self.number(self.eval(operand), op, operand.pos)
                return -value if op == "-" else value
            case Binary(op=op, left=left, right=right, pos=pos):
                return self.binary(op, left, right, pos)
            case Cond(test=test, then=then, otherwise=otherwise):
                return self.eval(then) if self.boolean(test, "condition of '?:'") else self.eval(otherwise)
            case ListLit(items=items):
                return [self.eval(item) for item in items]
            case MapLit(items=items):
                return {key: self.eval(value) for key, value in items}
        raise self.error(f"cannot evaluate {type(node).__name__}", node.pos)  # pragma: no cover

    def path(self, node: Node) -> str:
        """How the user wrote the accessed value, for "unknown name" messages."""
        match node:
            case Var(name=name):
                return name
            case Member(obj=obj, name=name):
                return f"{self.path(obj)}.{name}"
            case Index(obj=obj, index=Lit(value=value)):
                return f"{self.path(obj)}[{value!r}]"
        return "value"

    def member(self, obj: Any, name: str, node: Node, pos: int) -> Any:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
            raise self.unknown(f"unknown name {self.path(node)!r}{suggest(name, list(obj))}", pos)
        if isinstance(obj, list | tuple) and name.isdigit():
            return self.index(obj, int(name), node, pos)
        raise self.error(f"cannot read .{name} of {type_name(obj)}", pos)

    def index(self, obj: Any, key: Any, node: Node, pos: int) -> Any:
        if isinstance(obj, Mapping):
            if not isinstance(key, str):
                raise self.error(f"map key must be a string, got {type_name(key)}", pos)
            if key in obj:
                return obj[key]
            raise self.unknown(f"unknown name {self.path(node)!r}{suggest(key, list(obj))}", pos)
        if isinstance(obj, str | list | tuple):
            if not isinstance(key, int) or isinstance(key, bool):
                raise self.error(f"{type_name(obj)} index must be an int, got {type_name(key)}", pos)
            if not -len(obj) <= key < len(obj):
                raise self.error(f"index {key} out of range for {type_name(obj)} of length {len(obj)}", pos)
            return obj[key]
        raise self.error(f"cannot index {type_name(obj)}", pos)

    def call(self, name: str, args: tuple[Node, ...], pos: int) -> Any:
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
        if self.dialect is Dialect.WHEN and isinstance(value, str):
            parsed = _parse_number(value)
            if parsed is not None:
                return parsed
        if not is_number(value):
            raise self.error(f"{op!r} needs a number, got {type_name(value)} {value!r}", pos)
        return value

    def binary(self, op: str, left_node: Node, right_node: Node, pos: int) -> Any:
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
        if op in NEGATABLE or op in ("=~", "!~"):
            return self.predicate(op, left, right, pos)
        return self.arithmetic(op, left, right, pos)

    def equal(self, left: Any, right: Any) -> bool:
        if self.dialect is Dialect.EXPR:
            return _expr_equal(left, right)
        numbers = _when_numbers(left, right)
        if numbers is not None:
            return numbers[0] == numbers[1]
        return render_value(left) == render_value(right)

    def order(self, op: str, left: Any, right: Any, pos: int) -> bool:
        a: Any
        b: Any
        if self.dialect is Dialect.WHEN:
            numbers = _when_numbers(left, right)
            a, b = numbers if numbers is not None else (render_value(left), render_value(right))
        elif (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            a, b = left, right
        else:
            raise self.error(f"cannot compare {type_name(left)} {op} {type_name(right)}", pos)
        return bool(_ORDER[op](a, b))

    def predicate(self, op: str, left: Any, right: Any, pos: int) -> bool:
        if op == "in":
            if isinstance(right, list | tuple):
                return any(self.equal(left, item) for item in right)
            if isinstance(right, Mapping):
                return isinstance(left, str) and left in right
            if right is None:
                return False
            raise self.error(f"'in' needs an array or a map on the right, got {type_name(right)}", pos)
        if self.dialect is Dialect.WHEN:
            left, right = render_value(left), render_value(right)
        if not (isinstance(left, str) and isinstance(right, str)):
            raise self.error(f"{op!r} needs two strings, got {type_name(left)} and {type_name(right)}", pos)
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
                if self.dialect is Dialect.EXPR or _when_numbers(left, right) is None:
                    return left + right
            lists = isinstance(left, list | tuple) and isinstance(right, list | tuple)
            if self.dialect is Dialect.EXPR and lists:
                return [*left, *right]
            if self.dialect is Dialect.WHEN and _when_numbers(left, right) is None:
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
            raise self.error(f"'%' needs integers, got {type_name(a)} and {type_name(b)}", pos)
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
        if is_number(value):
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
    tree = parse(expression, Dialect.EXPR)
    return _Evaluator(expression, Dialect.EXPR, env).eval(tree)


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
    tree = parse(expression, Dialect.WHEN)
    result = _Evaluator(expression, Dialect.WHEN, {}).eval(tree)
    if not isinstance(result, bool):
        raise ExpressionError(
            expression, f"expected a boolean result, got {type_name(result)} {result!r}", kind="when"
        )
    return result
