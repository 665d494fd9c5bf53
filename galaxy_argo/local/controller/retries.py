"""The embedded engine's retryStrategy: a Retry node, its attempts, and whether and when one more runs.

Argo runs a template with a ``retryStrategy`` as a ``Retry`` node whose children are the attempts
``<name>(0)``, ``<name>(1)``...; the node ends with its last attempt once that succeeds, or once
the limit, the ``retryPolicy``, the ``expression`` (on ``lastRetry.exitCode/status/duration/
message``) or ``backoff.maxDuration`` says no more (see
https://argo-workflows.readthedocs.io/en/latest/retries/). Between attempts the walk waits the
backoff by asking for a later reconcile, never by sleeping.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import replace
from typing import Any

from galaxy_argo.local.controller.nodes import (
    FAILED,
    FULFILLED,
    Context,
    EngineError,
    finish_node,
    parse_time,
)
from galaxy_argo.local.expressions import ExpressionError, evaluate

__all__ = ["execute_retry"]


def execute_retry(
    ctx: Context, name: str, template: dict[str, Any], arguments: dict[str, Any]
) -> dict[str, Any] | None:
    """Run the Retry node ``name`` for ``template``: its current attempt, or the next after the backoff."""
    walk = ctx.walk
    strategy = template["retryStrategy"]
    retry_node = ctx.add_node(name, "Retry", template)
    children = [walk.nodes[c] for c in retry_node.get("children", []) if c in walk.nodes]
    if children and children[-1].get("phase") not in FULFILLED:
        current = replace(ctx, parent=retry_node, scope={**ctx.scope, "retries": len(children) - 1})
        child = current.execute(children[-1]["name"], template, arguments, in_retry=True)
        if child is None or child.get("phase") not in FULFILLED:
            retry_node["phase"] = "Running"
            return retry_node
        children[-1] = child
    if children:
        last = children[-1]
        if last["phase"] == "Succeeded":
            retry_node["outputs"] = copy.deepcopy(last.get("outputs", {}))
            finish_node(retry_node, "Succeeded")
            return retry_node
        try:
            retry = _should_retry(strategy, last, len(children), retry_node)
        except (EngineError, ExpressionError) as err:
            finish_node(retry_node, "Error", str(err))
            return retry_node
        if not retry:
            retry_node["outputs"] = copy.deepcopy(last.get("outputs", {}))
            finish_node(retry_node, last["phase"], last.get("message", ""))
            return retry_node
        wait = _backoff(strategy, len(children))
        remaining = parse_time(last.get("finishedAt")) + wait - time.time()
        if remaining > 0:
            walk.soon(remaining)
            return retry_node
    attempt = len(children)
    following = ctx.inside(retry_node).seeing({**ctx.scope, "retries": attempt})
    following.execute(f"{name}({attempt})", template, arguments, in_retry=True)
    return retry_node


def _duration_seconds(text: Any) -> float:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) or a number of seconds."""
    if text in (None, ""):
        return 0.0
    if isinstance(text, int | float) or re.fullmatch(r"[0-9.]+", str(text)):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def _backoff(strategy: dict[str, Any], attempts: int) -> float:
    """Seconds to wait after ``attempts`` attempts: ``duration * factor ** (attempts - 1)``."""
    backoff = strategy.get("backoff") or {}
    base = _duration_seconds(backoff.get("duration"))
    factor = float(backoff.get("factor") or 1)
    return base * factor ** max(0, attempts - 1)


def _should_retry(
    strategy: dict[str, Any], last: dict[str, Any], attempts: int, retry_node: dict[str, Any]
) -> bool:
    """Whether one more attempt runs after ``last`` (the ``attempts``-th) failed."""
    limit = strategy.get("limit")
    try:
        if limit is not None and attempts > int(str(limit)):
            return False
    except ValueError as err:
        raise EngineError(f"retryStrategy.limit {limit!r} is not a whole number") from err
    policy = strategy.get("retryPolicy") or "OnFailure"
    phase = last.get("phase")
    allowed = {
        "Always": phase in FAILED,
        "OnFailure": phase == "Failed",
        "OnError": phase == "Error",
        "OnTransientError": phase == "Error",
    }.get(policy)
    if allowed is None:
        raise EngineError(f"retryPolicy {policy!r}: expected Always, OnFailure, OnError or OnTransientError")
    if not allowed:
        return False
    max_duration = _duration_seconds((strategy.get("backoff") or {}).get("maxDuration"))
    if max_duration and time.time() - parse_time(retry_node.get("startedAt")) > max_duration:
        return False
    expression = strategy.get("expression")
    if expression:
        env = {
            "lastRetry": {
                "exitCode": str((last.get("outputs") or {}).get("exitCode", "-1")),
                "status": phase,
                "duration": str(int(parse_time(last.get("finishedAt")) - parse_time(last.get("startedAt")))),
                "message": last.get("message", ""),
            }
        }
        return bool(evaluate(expression, env))
    return True
