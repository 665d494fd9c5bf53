"""Template tags, expr-lang, DAG depends and when: the embedded engine's expression layer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from galaxy_argo.core.compile import INFRA_RETRY_EXPRESSION
from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.expressions import (
    ExpressionError,
    ExpressionSyntaxError,
    UnknownNameError,
    dependencies_to_depends,
    depends_ready,
    evaluate,
    evaluate_depends,
    evaluate_when,
    failures_handled_by_depends,
    render_value,
    scope_to_env,
    substitute,
    substitute_obj,
)

SCOPE: dict[str, Any] = {
    "inputs.parameters.message": "hello",
    "inputs.parameters.count": "3",
    "inputs.parameters.json": '{"a": {"b": [10, 20]}}',
    "steps.generate-parameter.outputs.parameters.hello-param": "hi there",
    "tasks.A.outputs.result": "heads",
    "workflow.name": "wf-abc12",
    "workflow.parameters.message": "from wf",
    "pod.name": "wf-abc12-main-123",
    "retries": 2,
}

# -- substitute ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{inputs.parameters.message}}", "hello"),
        ("say {{inputs.parameters.message}}!", "say hello!"),
        ("{{ inputs.parameters.message }}", "hello"),
        ("{{\tinputs.parameters.message\n}}", "hello"),
        ("{{steps.generate-parameter.outputs.parameters.hello-param}}", "hi there"),
        ("{{tasks.A.outputs.result}}", "heads"),
        ("{{workflow.name}}/{{workflow.parameters.message}}", "wf-abc12/from wf"),
        ("{{pod.name}}", "wf-abc12-main-123"),
        ("attempt {{retries}}", "attempt 2"),
        ("no tags at all", "no tags at all"),
        ("{single} braces {{inputs.parameters.count}}", "{single} braces 3"),
        ("", ""),
    ],
)
def test_simple_tags(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (5, "5"),
        (-7, "-7"),
        (3.0, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ({"b": 1, "a": [1, 2.0]}, '{"a":[1,2],"b":1}'),
        ([1, "x", {"k": True}], '[1,"x",{"k":true}]'),
        ((1, 2), "[1,2]"),
        ("ünïcode", "ünïcode"),
        ({"s": "é"}, '{"s":"é"}'),
    ],
)
def test_non_string_values_render_like_argo(value: Any, expected: str) -> None:
    assert render_value(value) == expected
    assert substitute("{{x}}", {"x": value}) == expected


def test_item_as_a_map_answers_dotted_names() -> None:
    scope = {"item": {"name": "jesse", "group": {"id": 7}, "tags": ["a", "b"]}}
    assert substitute("{{item.name}}-{{item.group.id}}-{{item.tags.1}}", scope) == "jesse-7-b"
    assert substitute("{{item}}", scope) == '{"group":{"id":7},"name":"jesse","tags":["a","b"]}'


def test_flat_key_wins_over_descending_a_map() -> None:
    scope = {"item": {"key": "from map"}, "item.key": "flat"}
    assert substitute("{{item.key}}", scope) == "flat"


def test_substitution_is_single_pass() -> None:
    scope = {"a": "{{b}}", "b": "never"}
    assert substitute("{{a}}", scope) == "{{b}}"


@pytest.mark.parametrize(
    "text", ["{{workflow.status}}", "{{ item.missing }}", "x {{nope}} y", "{{item.name.deeper}}"]
)
def test_unknown_tags_raise_when_strict(text: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        substitute(text, {"item": {"name": "n"}})
    assert "{{" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "{{workflow.status}}",
        "{{ workflow.status }}",
        "pre {{ nope }} post",
        "{{=workflow.status == 'Failed'}}",
    ],
)
def test_unknown_tags_stay_untouched_when_not_strict(text: str) -> None:
    assert substitute(text, {}, strict=False) == text


def test_non_strict_still_resolves_what_it_can() -> None:
    text = "{{workflow.name}} {{workflow.status}} {{=asInt(retries) + 1}} {{=lastRetry.status}}"
    assert substitute(text, SCOPE, strict=False) == "wf-abc12 {{workflow.status}} 3 {{=lastRetry.status}}"


def test_strict_error_suggests_a_close_name() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'inputs.parameters.message'"):
        substitute("{{inputs.parameters.mesage}}", SCOPE)


def test_unknown_tag_error_is_a_galaxy_argo_error() -> None:
    with pytest.raises(GalaxyArgoError, match=r"\{\{nope\}\}"):
        substitute("{{nope}}", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{=inputs.parameters.message}}", "hello"),
        ("{{= inputs.parameters['message'] }}", "hello"),
        ("{{ =asInt(inputs.parameters.count) * 2 }}", "6"),
        ("{{=asFloat(inputs.parameters.count) / 2}}", "1.5"),
        ("{{=asInt(inputs.parameters.count) / 3}}", "1"),
        ("{{=steps['generate-parameter'].outputs.parameters['hello-param']}}", "hi there"),
        ("{{=steps.generate-parameter.outputs.parameters.hello-param}}", "hi there"),
        ("{{=sprig.upper(inputs.parameters.message)}}", "HELLO"),
        ("{{=sprig.trim('  x  ')}}", "x"),
        ("{{=jsonpath(inputs.parameters.json, '$.a.b[1]')}}", "20"),
        ("{{=tasks.A.outputs.result == 'heads' ? 'win' : 'lose'}}", "win"),
        ("{{=retries > 1}}", "true"),
        ("{{=[1, 2.0, 'x']}}", '[1,2,"x"]'),
        ("{{=string(retries) + '!'}}", "2!"),
        ("{{=workflow.name}}-{{workflow.name}}", "wf-abc12-wf-abc12"),
    ],
)
def test_expression_tags(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected


def test_expression_tag_sees_item_maps() -> None:
    assert substitute("{{=item.name + '/' + item['kind']}}", {"item": {"name": "a", "kind": "b"}}) == "a/b"


def test_expression_tag_errors() -> None:
    with pytest.raises(UnknownNameError, match="inputs.parameters.nope"):
        substitute("{{=inputs.parameters.nope}}", SCOPE)
    with pytest.raises(UnknownNameError, match="nil"):
        substitute("{{=nil}}", SCOPE)
    with pytest.raises(ExpressionSyntaxError):
        substitute("{{=1 +}}", SCOPE, strict=False)  # a syntax error never resolves later


def test_scope_to_env_nests_without_touching_the_scope() -> None:
    item = {"name": "a"}
    scope = {"item": item, "item.name": "a", "inputs.parameters.x": "1", "steps.s.outputs.result": "r"}
    env = scope_to_env(scope)
    assert env["inputs"] == {"parameters": {"x": "1"}}
    assert env["steps"]["s"]["outputs"]["result"] == "r"
    assert env["item"] == {"name": "a"}
    assert item == {"name": "a"}
    conflict = scope_to_env({"a": "leaf", "a.b": "deeper"})
    assert conflict == {"a": "leaf"}


def test_substitute_obj_recurses_into_strings_only() -> None:
    template = {
        "name": "{{inputs.parameters.message}}",
        "{{keys}}": "stay",
        "args": ["echo", "{{ inputs.parameters.count }}", 7, None, True],
        "nested": {"deep": [{"x": "{{=asInt(inputs.parameters.count) + 1}}"}]},
        "tuple": ("{{pod.name}}",),
    }
    result = substitute_obj(template, SCOPE)
    assert result == {
        "name": "hello",
        "{{keys}}": "stay",
        "args": ["echo", "3", 7, None, True],
        "nested": {"deep": [{"x": "4"}]},
        "tuple": ("wf-abc12-main-123",),
    }
    assert template["name"] == "{{inputs.parameters.message}}"


def test_substitute_obj_strictness() -> None:
    with pytest.raises(UnknownNameError):
        substitute_obj({"a": ["{{missing}}"]}, {})
    assert substitute_obj({"a": ["{{missing}}"]}, {}, strict=False) == {"a": ["{{missing}}"]}
    assert substitute_obj(5, {}) == 5


# -- evaluate: literals, operators, precedence --------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("42", 42),
        ("1_000", 1000),
        ("0x1F", 31),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("nil", None),
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'a\nb\tc\\d'", "a\nb\tc\\d"),
        (r"'\x41\u00e9\U0001F600\101'", "Aé\U0001f600A"),
        ("\"mixed 'quotes'\"", "mixed 'quotes'"),
        ("[1, 'a', [true]]", [1, "a", [True]]),
        ("[]", []),
        ("{a: 1, 'b-c': 2, 3: 'x'}", {"a": 1, "b-c": 2, "3": "x"}),
    ],
)
def test_literals(expression: str, expected: Any) -> None:
    result = evaluate(expression, {})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("7 - 10", -3),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("2 ** 10", 1024.0),
        ("1.5 + 1", 2.5),
        ("'ab' + 'cd'", "abcd"),
        ("[1] + [2]", [1, 2]),
        ("-3", -3),
        ("+3", 3),
        ("--3", 3),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 ** 3 ** 2", 512.0),
        ("-2 ** 2", -4.0),
        ("2 * 3 % 4", 2),
    ],
)
def test_arithmetic_and_precedence(expression: str, expected: Any) -> None:
    result = evaluate(expression, {})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 == '1'", False),
        ("'1' != 1", True),
        ("true == 1", False),
        ("nil == nil", True),
        ("x == nil", False),
        ("'a' == 'a'", True),
        ("[1, 'a'] == [1, 'a']", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2 >= 3", False),
        ("'abc' < 'abd'", True),
        ("'b' > 'a'", True),
        ("2 in [1, 2]", True),
        ("2.0 in [1, 2]", True),
        ("'2' in [1, 2]", False),
        ("'k' in {k: 1}", True),
        ("'z' in {k: 1}", False),
        ("3 not in [1, 2]", True),
        ("'hello world' contains 'o w'", True),
        ("'hello' startsWith 'he'", True),
        ("'hello' endsWith 'lo'", True),
        ("'hello' not contains 'z'", True),
        ("'hello' not startsWith 'he'", False),
        ("'Pod was EVICTED' matches '(?i)evict'", True),
        ("'Pod was EVICTED' matches 'evict'", False),
        ("'abc' matches '^b'", False),
        ("'abc' matches 'b'", True),
        ("'abc' not matches 'z'", True),
    ],
)
def test_comparisons_and_string_operators(expression: str, expected: bool) -> None:
    assert evaluate(expression, {"x": 1}) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true && false", False),
        ("true and true", True),
        ("false || true", True),
        ("false or false", False),
        ("!true", False),
        ("not false", True),
        ("!!true", True),
        ("true || true && false", True),  # && binds tighter: true || (true && false)
        ("(true || true) && false", False),
        ("false && true || true", True),
        ("!false == true", True),  # ! binds tighter than ==: (!false) == true
        ("!(1 == 2)", True),
        ("1 < 2 == true", True),
        ("1 + 1 == 2 && 'a' + 'b' == 'ab'", True),
    ],
)
def test_logic_and_precedence(expression: str, expected: bool) -> None:
    assert evaluate(expression, {}) is expected


def test_not_binds_tighter_than_comparison() -> None:
    # As in expr: `not 1 == 2` is `(not 1) == 2`, a type error, not `not (1 == 2)`.
    with pytest.raises(ExpressionError, match="operand of 'not' must be a bool"):
        evaluate("not 1 == 2", {})
    assert evaluate("not (1 == 2)", {}) is True


def test_logic_short_circuits() -> None:
    assert evaluate("false && missing", {}) is False
    assert evaluate("true || missing", {}) is True
    with pytest.raises(UnknownNameError):
        evaluate("true && missing", {})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true ? 'a' : 'b'", "a"),
        ("false ? 'a' : 'b'", "b"),
        ("1 > 2 ? 'a' : 2 > 1 ? 'b' : 'c'", "b"),
        ("(true ? 1 : 2) + 1", 2),
        ("x ?? 'default'", 5),
        ("missing ?? 'default'", "default"),
        ("m.none ?? 'default'", "default"),
        ("m.nothing ?? 'default'", "default"),
        ("false ? missing : 'safe'", "safe"),
    ],
)
def test_ternary_and_nil_coalescing(expression: str, expected: Any) -> None:
    assert evaluate(expression, {"x": 5, "m": {"none": None}}) == expected


ENV: dict[str, Any] = {
    "inputs": {"parameters": {"x": "7", "with-dash": "d", "list": [1, 2, 3]}},
    "steps": {"generate-parameter": {"outputs": {"parameters": {"hello-param": "hi"}}}},
    "lastRetry": {"status": "Failed", "exitCode": "1", "duration": "12", "message": "m"},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.parameters.x", "7"),
        ("inputs['parameters']['x']", "7"),
        ("inputs.parameters['with-dash']", "d"),
        ("inputs.parameters.with-dash", "d"),
        ("steps['generate-parameter'].outputs.parameters['hello-param']", "hi"),
        ("steps.generate-parameter.outputs.parameters.hello-param", "hi"),
        ("inputs.parameters.list[0]", 1),
        ("inputs.parameters.list[-1]", 3),
        ("inputs.parameters.list.1", 2),
        ("inputs.parameters.x[0]", "7"),
        ("asInt(inputs.parameters.x) - 1", 6),
        ("asInt(inputs.parameters.x) -1", 6),
        ("len(inputs.parameters.list)", 3),
        ("asInt(lastRetry.exitCode) == 1", True),
        ("lastRetry.exitCode == 1", False),  # exitCode is a string, and expr does not coerce
        ("lastRetry.exitCode == '1'", True),
        ("asInt(lastRetry.duration) < 60", True),
    ],
)
def test_member_access(expression: str, expected: Any) -> None:
    assert evaluate(expression, ENV) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("asInt('42')", 42),
        ("asInt('-3')", -3),
        ("asInt(3.9)", 3),
        ("int('5')", 5),
        ("asFloat('2.5')", 2.5),
        ("asFloat(2)", 2.0),
        ("float('1e2')", 100.0),
        ("string(1.0)", "1"),
        ("string(true)", "true"),
        ("string('s')", "s"),
        ("string([1])", "[1]"),
        ("len('abc')", 3),
        ("len({a: 1})", 1),
        ("upper('a')", "A"),
        ("lower('A')", "a"),
        ("trim(' a ')", "a"),
        ("sprig.upper('abc')", "ABC"),
        ("sprig.lower('ABC')", "abc"),
        ("sprig.trim('\\t x \\n')", "x"),
        ('jsonpath(\'{"a": {"b": [1, {"c": "d"}]}}\', \'$.a.b[1].c\')', "d"),
        ("jsonpath('{\"a-b\": 1}', \"$['a-b']\")", 1),
        ("jsonpath('[1, 2]', '$')", [1, 2]),
        ("jsonpath({k: 'v'}, '$.k')", "v"),
        ("toJson({b: 1, a: [true]})", '{"a":[true],"b":1}'),
        ("fromJSON('{\"a\": 1}').a", 1),
    ],
)
def test_functions(expression: str, expected: Any) -> None:
    result = evaluate(expression, {})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "error", "fragment", "position"),
    [
        ("", ExpressionSyntaxError, "empty expression", 0),
        ("1 +", ExpressionSyntaxError, "expected a value", 3),
        ("(1 + 2", ExpressionSyntaxError, "expected ')'", 6),
        ("1 2", ExpressionSyntaxError, "expected an operator", 2),
        ("a.", ExpressionSyntaxError, "member name", 2),
        ("'open", ExpressionSyntaxError, "not terminated", 0),
        (r"'bad \q escape'", ExpressionSyntaxError, "unknown escape", 5),
        (r"'\x4'", ExpressionSyntaxError, "bad \\x escape", 1),
        ("1 # 2", ExpressionSyntaxError, "unexpected character '#'", 2),
        ("true ? 1", ExpressionSyntaxError, "expected ':'", 8),
        ("and", ExpressionSyntaxError, "expected a value", 0),
        ("[1, 2", ExpressionSyntaxError, "expected ','", 5),
        ("(1)(2)", ExpressionSyntaxError, "only named functions", 3),
        ("missing", UnknownNameError, "unknown name 'missing'", 0),
        ("inputs.parameters.y", UnknownNameError, "unknown name 'inputs.parameters.y'", 18),
        ("inputs.parameters['y']", UnknownNameError, "inputs.parameters['y']", 17),
        ("inputs.paramaters.x", UnknownNameError, "did you mean 'parameters'", 7),
        ("1 == 1 && 'a'", ExpressionError, "must be a bool", 10),
        ("!'x'", ExpressionError, "must be a bool", 1),
        ("'1' < 2", ExpressionError, "cannot compare string < int", 4),
        ("'a' + 1", ExpressionError, "'+' needs a number", 4),
        ("-'a'", ExpressionError, "'-' needs a number", 1),
        ("1 / 0", ExpressionError, "division by zero", 2),
        ("5 % 0", ExpressionError, "division by zero", 2),
        ("5.5 % 2", ExpressionError, "'%' needs integers", 4),
        ("1 in 'abc'", ExpressionError, "'in' needs an array or a map", 2),
        ("1 matches 'a'", ExpressionError, "needs two strings", 2),
        ("'a' matches '('", ExpressionError, "bad regular expression", 4),
        ("inputs.parameters.list[5]", ExpressionError, "out of range", 22),
        ("inputs.parameters.list['a']", ExpressionError, "index must be an int", 22),
        ("inputs.parameters.x.y", ExpressionError, "cannot read .y of string", 20),
        ("nope(1)", ExpressionError, "unknown function 'nope'", 0),
        ("sprig.int('1')", ExpressionError, "unknown function 'sprig.int'", 0),
        ("asInt('1.5')", ExpressionError, "cannot convert string '1.5' to int", 0),
        ("asInt(' 1')", ExpressionError, "cannot convert", 0),
        ("asFloat('x')", ExpressionError, "cannot convert", 0),
        ("asInt(1, 2)", ExpressionError, "takes 1 argument, got 2", 0),
        ("jsonpath('{}')", ExpressionError, "takes 2 arguments", 0),
        ("jsonpath('{}', '$.a')", ExpressionError, "'$.a' does not exist", 0),
        ("jsonpath('{', '$')", ExpressionError, "not JSON", 0),
        ("jsonpath('{\"a\": [1]}', '$.a[*]')", ExpressionError, "unsupported path syntax", 0),
        ("jsonpath('[]', 'a')", ExpressionError, "must start with '$'", 0),
        ("1 ? 2 : 3", ExpressionError, "condition of '?:' must be a bool", 0),
    ],
)
def test_errors_name_the_expression_and_position(
    expression: str, error: type[ExpressionError], fragment: str, position: int
) -> None:
    with pytest.raises(error) as info:
        evaluate(expression, ENV)
    assert type(info.value) is error
    assert fragment in str(info.value)
    assert repr(expression) in str(info.value)
    assert info.value.expression == expression
    assert info.value.position == position
    assert isinstance(info.value, GalaxyArgoError)
    assert isinstance(info.value, ValueError)


def test_no_python_eval() -> None:
    for expression in ("__import__('os')", "().__class__", "open('/etc/passwd')", "x.__class__"):
        with pytest.raises(ExpressionError):
            evaluate(expression, {"x": "s"})


# -- the compiler's retry expression ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "retry"),
    [
        ("Error", "pod deleted", True),
        ("Error", "", True),
        ("Failed", "The node was low on resource: memory.", True),
        ("Failed", "Pod was terminated in response to imminent node shutdown.", True),
        ("Failed", "Pod The node had condition: [DiskPressure]. EVICTED", True),
        ("Failed", "main: Error (exit code 1): tool exited with code 1", False),
        ("Failed", "run: OOMKilled (exit code 137)", False),
        ("Failed", "Pod was active on the node longer than the specified deadline", False),
        ("Succeeded", "", False),
        ("Succeeded", "pod deleted", False),
    ],
)
def test_infra_retry_expression(status: str, message: str, retry: bool) -> None:
    env = {"lastRetry": {"status": status, "message": message, "exitCode": "1", "duration": "30"}}
    assert evaluate(INFRA_RETRY_EXPRESSION, env) is retry


# -- depends ------------------------------------------------------------------------------------------

DIAMOND = {"A": "Succeeded", "B": "Succeeded", "C": "Failed", "D": "Pending"}


@pytest.mark.parametrize(
    ("expression", "tasks", "expected"),
    [
        ("B && C", {"B": "Succeeded", "C": "Succeeded"}, True),
        ("B && C", {"B": "Succeeded", "C": "Failed"}, False),
        ("B && C", {"B": "Skipped", "C": "Succeeded"}, True),  # bare B is Succeeded || Skipped || Daemoned
        ("B && C", {"B": "Omitted", "C": "Succeeded"}, False),
        ("B && C", {"B": "Daemoned", "C": "Succeeded"}, True),
        ("A", {"A": "Error"}, False),
        ("A.Failed", {"A": "Failed"}, True),
        ("A.Failed", {"A": "Error"}, False),
        ("A.Errored", {"A": "Error"}, True),
        ("A.Skipped", {"A": "Skipped"}, True),
        ("A.Omitted", {"A": "Omitted"}, True),
        ("A.Daemoned", {"A": "Succeeded"}, False),
        ("A.Daemoned", {"A": "Daemoned"}, True),
        ("A.Succeeded", {"A": "Skipped"}, False),
        ("!A.Succeeded", {"A": "Failed"}, True),
        ("!A.Succeeded", {"A": "Succeeded"}, False),
        ("!A", {"A": "Skipped"}, False),
        ("(A || B.Failed) && C", {"A": "Failed", "B": "Failed", "C": "Succeeded"}, True),
        ("(A || B.Failed) && C", {"A": "Failed", "B": "Succeeded", "C": "Succeeded"}, False),
        ("(A || B.Failed) && C", {"A": "Succeeded", "B": "Succeeded", "C": "Failed"}, False),
        ("A || B.Failed && C", {"A": "Succeeded", "B": "Succeeded", "C": "Failed"}, True),
        ("A.Succeeded || A.Failed", {"A": "Failed"}, True),
        ("!(A.Failed || A.Errored)", {"A": "Error"}, False),
        ("inner-A && generate-1.Succeeded", {"inner-A": "Succeeded", "generate-1": "Succeeded"}, True),
        ("inner-A&&!generate-1", {"inner-A": "Succeeded", "generate-1": "Failed"}, True),
        ("  A  ", {"A": "Succeeded"}, True),
        ("", {}, True),
        ("A.Succeeded", {"A": "Pending", "B": "Succeeded"}, False),
        ("A.AnySucceeded", {"A": "Succeeded"}, True),
        ("A.AllFailed", {"A": "Failed"}, True),
        ("A.AllFailed", {"A": "Error"}, False),
    ],
)
def test_depends(expression: str, tasks: dict[str, str], expected: bool) -> None:
    assert evaluate_depends(expression, tasks) is expected


@pytest.mark.parametrize(
    ("children", "any_succeeded", "all_failed"),
    [
        (["Succeeded", "Failed"], True, False),
        (["Failed", "Failed"], False, True),
        (["Failed", "Error"], False, False),
        (["Succeeded", "Succeeded"], True, False),
        ([], False, False),
    ],
)
def test_depends_fan_out(children: list[str], any_succeeded: bool, all_failed: bool) -> None:
    tasks = {"A": "Failed"}
    assert evaluate_depends("A.AnySucceeded", tasks, {"A": children}) is any_succeeded
    assert evaluate_depends("A.AllFailed", tasks, {"A": children}) is all_failed


@pytest.mark.parametrize(
    ("expression", "tasks", "ready"),
    [
        ("B && C", {"B": "Succeeded", "C": "Failed", "D": "Pending"}, True),
        ("B && C", {"B": "Succeeded", "C": "Running"}, False),
        ("B && C", {"B": "Pending", "C": "Succeeded"}, False),
        ("A.Failed || B", {"A": "Error", "B": "Omitted"}, True),
        ("A || B", {"A": "Succeeded", "B": "Running"}, False),  # Argo waits for every dependency
        ("A", {"A": "Skipped"}, True),
        ("A", {"A": "Daemoned"}, True),
        ("", {}, True),
    ],
)
def test_depends_ready(expression: str, tasks: dict[str, str], ready: bool) -> None:
    assert depends_ready(expression, tasks) is ready


@pytest.mark.parametrize(
    ("expression", "tasks", "error", "fragment"),
    [
        ("A && X", {"A": "Succeeded"}, UnknownNameError, "unknown task 'X'; tasks: A"),
        ("A.Finished", {"A": "Succeeded"}, ExpressionSyntaxError, "unknown task result 'Finished'"),
        ("A &&", {"A": "Succeeded"}, ExpressionSyntaxError, "expected a task"),
        ("(A", {"A": "Succeeded"}, ExpressionSyntaxError, "expected ')'"),
        ("A B", {"A": "Succeeded", "B": "Succeeded"}, ExpressionSyntaxError, "expected '&&', '||'"),
        ("A == B", {"A": "Succeeded", "B": "Succeeded"}, ExpressionSyntaxError, "unexpected '='"),
        ("A.", {"A": "Succeeded"}, ExpressionSyntaxError, "unexpected '.'"),
        ("A", {"A": "Done"}, ExpressionError, "unknown phase 'Done'"),
    ],
)
def test_depends_errors(
    expression: str, tasks: dict[str, str], error: type[ExpressionError], fragment: str
) -> None:
    for check in (evaluate_depends, depends_ready):
        with pytest.raises(error) as info:
            check(expression, tasks)
        assert fragment in str(info.value)
        assert f"depends {expression!r}" in str(info.value)


@pytest.mark.parametrize(
    ("expression", "tasks"),
    [
        ("A || X", {"A": "Succeeded"}),  # true before X is looked at
        ("A.Failed && X.Succeeded", {"A": "Succeeded"}),  # false before X is looked at
        ("A || X", {"A": "Pending"}),  # not ready before X is looked at
    ],
)
def test_depends_checks_every_task_even_when_the_value_is_already_known(
    expression: str, tasks: dict[str, str]
) -> None:
    for check in (evaluate_depends, depends_ready):
        with pytest.raises(UnknownNameError, match="unknown task 'X'"):
            check(expression, tasks)


def test_depends_child_phase_is_validated() -> None:
    with pytest.raises(ExpressionError, match="unknown phase 'Nope'"):
        evaluate_depends("A.AnySucceeded", {"A": "Failed"}, {"A": ["Nope"]})


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ([], ""),
        (["A"], "A"),
        (["A", "B"], "A && B"),
        (["inner-A", "generate-1", "c_2"], "inner-A && generate-1 && c_2"),
    ],
)
def test_dependencies_to_depends(deps: list[str], expected: str) -> None:
    depends = dependencies_to_depends(deps)
    assert depends == expected
    if deps:
        assert evaluate_depends(depends, dict.fromkeys(deps, "Succeeded")) is True
        assert evaluate_depends(depends, {**dict.fromkeys(deps, "Succeeded"), deps[-1]: "Failed"}) is False


@pytest.mark.parametrize("deps", [["A || B"], ["A", ""], "AB"])
def test_dependencies_to_depends_rejects_non_names(deps: Any) -> None:
    with pytest.raises(ExpressionError):
        dependencies_to_depends(deps)


@pytest.mark.parametrize(
    ("expression", "position", "reason"),
    [
        (
            "A.Finished",
            0,
            "unknown task result 'Finished'; expected one of Succeeded, Failed, Errored, "
            "Skipped, Omitted, Daemoned, AnySucceeded, AllFailed",
        ),
        ("  !B.Foo", 3, "unknown task result 'Foo'"),
        ("A &&", 4, "expected a task, found end of expression"),
        ("A || )", 5, "expected a task, found ')'"),
        ("(A", 2, "expected ')', found end of expression"),
        ("A B", 2, "expected '&&', '||' or the end, found 'B'"),
        ("A.Failed2", 8, "expected '&&', '||' or the end, found '2'"),
        ("A == B", 2, "unexpected '='; expected a task, task.Result, '&&', '||', '!' or parentheses"),
        ("A.", 1, "unexpected '.'"),
        ("A .Failed", 2, "unexpected '.'"),
        ("'A'", 0, 'unexpected "\'"'),
    ],
)
def test_depends_syntax_error_positions(expression: str, position: int, reason: str) -> None:
    tasks = {"A": "Succeeded", "B": "Succeeded"}
    checks = (evaluate_depends, depends_ready, lambda e, _: failures_handled_by_depends(e))
    for check in checks:
        with pytest.raises(ExpressionSyntaxError) as info:
            check(expression, tasks)
        assert info.value.position == position
        assert info.value.reason.startswith(reason)
        assert info.value.kind == "depends"


@pytest.mark.parametrize(
    ("expression", "handled"),
    [
        ("", set()),
        ("   ", set()),
        ("A", set()),
        ("A.Succeeded || A.Skipped || A.Omitted || A.Daemoned", set()),
        ("A.Failed", {"A"}),
        ("A.Errored", {"A"}),
        ("A.AnySucceeded", {"A"}),
        ("A.AllFailed", {"A"}),
        ("A.Failed || A.Errored", {"A"}),
        ("!A.Failed && B", {"A"}),  # a negated mention still provides for the failure
        ("(inner-A.Failed || generate-1.Errored) && c_2.Succeeded", {"inner-A", "generate-1"}),
        ("inner-A&&!generate-1.AllFailed", {"generate-1"}),
    ],
)
def test_failures_handled_by_depends(expression: str, handled: set[str]) -> None:
    assert failures_handled_by_depends(expression) == handled


#: How the engine used to find the handled failures: a scan of the text, which the parsed tree replaces.
ENGINE_SCAN = r"([A-Za-z0-9_-]+)\.(?:Failed|Errored|AnySucceeded|AllFailed)"
#: From Argo's docs (enhanced-depends-logic.md) and examples (dag-enhanced-depends.yaml,
#: dag-conditional-on-task-status.yaml), and this repository's engine tests.
REPRESENTATIVE_DEPENDS = [
    "A && (C.Succeeded || C.Failed)",
    "B || C",
    "should-execute-2.Succeeded || should-not-execute",
    "fail-or-succeed.Failed",
    "P && (F.Succeeded || F.Failed)",
    "(task-2.Succeeded || task-2.Skipped || task-2.Failed) && !task-3.Errored",
    "task-1.AnySucceeded || task-2.AllFailed",
    "A.Succeeded || A.Skipped || A.Daemoned",
    "a.Failed",
    "a.Succeeded",
]


def _depends_in(document: Any) -> list[str]:
    if isinstance(document, dict):
        found = [document["depends"]] if isinstance(document.get("depends"), str) else []
        return found + [d for value in document.values() for d in _depends_in(value)]
    if isinstance(document, list):
        return [d for value in document for d in _depends_in(value)]
    return []


def test_failures_handled_by_depends_agrees_with_the_engines_scan(shared_dir: Path) -> None:
    examples = sorted((shared_dir / "argo" / "examples").rglob("*.yaml"))
    from_examples = [
        depends
        for path in examples
        for document in yaml.safe_load_all(path.read_text())
        for depends in _depends_in(document)
    ]
    assert from_examples, "Argo's examples have DAGs with depends"
    for expression in from_examples + REPRESENTATIVE_DEPENDS:
        assert failures_handled_by_depends(expression) == set(re.findall(ENGINE_SCAN, expression)), expression
    handled = [failures_handled_by_depends(e) for e in REPRESENTATIVE_DEPENDS]
    assert {"C", "F", "fail-or-succeed", "task-1", "task-2", "task-3", "a"} == set().union(*handled)


# -- when ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"heads" == "heads"', True),
        ("'heads' == 'tails'", False),
        ("heads == heads", True),
        ("tails != heads", True),
        ("tails == heads", False),
        ("5 > 3", True),
        ("5 < 3", False),
        ("10 > 9", True),
        ("10 >= 10.0", True),
        ("2.5 <= 2", False),
        ("-1 < 0", True),
        ('"10" > "9"', True),  # numeric text compares as numbers (govaluate: false)
        ('5 == "5"', True),
        ("007 == 7", True),
        ("abc < abd", True),
        ("b > a", True),
        ("10 > abc", False),  # mixed: compared as text, "10" < "abc"
        ("true", True),
        ("false", False),
        ("true == true", True),
        ("true == false", False),
        ("!false", True),
        ("!(1 > 2)", True),
        ("heads == heads && 1 < 2", True),
        ("heads == tails || 1 < 2", True),
        ("heads == tails || 1 < 2 && false", False),
        ("(heads == tails || 1 < 2) && true", True),
        ("Succeeded == Succeeded", True),
        ("my-value == my-value", True),
        ("1.2.3 == 1.2.3", True),
        ("1.2.3 != 1.2.4", True),
        ("v1.0 == v1.0", True),
        ("hello =~ '^h.l'", True),
        ("hello =~ 'x'", False),
        ("hello !~ 'x'", True),
        ("HELLO =~ '(?i)hello'", True),
        ("b in (a, b, c)", True),
        ("d in (a, b, c)", False),
        ("2 in (1, 2.0)", True),
        ("1 + 1 == 2", True),
        ("3 * 2 > 5", True),
        ("7 % 4 == 3", True),
        ('"7" > 5', True),
        ("a + b == ab", True),
        ("7 > 5 ? true : false", True),
        ("7 < 5 ? true : 1 == 1", True),
        ("", True),
        ("   ", True),
    ],
)
def test_when(expression: str, expected: bool) -> None:
    assert evaluate_when(expression) is expected


def test_when_after_substitution() -> None:
    scope = {"steps.flip-coin.outputs.result": "heads", "item": 7}
    assert evaluate_when(substitute("{{steps.flip-coin.outputs.result}} == heads", scope)) is True
    assert evaluate_when(substitute("'{{steps.flip-coin.outputs.result}}' == 'tails'", scope)) is False
    assert evaluate_when(substitute("{{item}} > 5", scope)) is True


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("heads", "expected a boolean result, got string 'heads'"),
        ("1 + 2", "expected a boolean result"),
        ("(a, b)", "expected a boolean result, got array"),
        ("a ==", "expected a value"),
        ("hello world == x", "expected an operator"),
        ("(1 > 2", "expected ')'"),
        ("a && b", "must be a bool"),
        ("!heads", "must be a bool"),
        ("a - 1 > 0", "needs a number"),
        ("a =~ '('", "bad regular expression"),
        ("x in y", "'in' needs an array"),
        ("a $ b", "unexpected character '$'"),
        ("1 / 0 > 1", "division by zero"),
    ],
)
def test_when_errors(expression: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_when(expression)
    assert fragment in str(info.value)
    assert f"when {expression!r}" in str(info.value)
