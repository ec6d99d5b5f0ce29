"""python-llm-router: a fuelhost artifact in Python that picks a model for
each request and asks it through the host's `llm` capability
(`fuelhost:host@0.2.0`; its `world` file says so).

Input, JSON: `{"prompt": "...", "task": "chat"}`, optionally
`"model"` (asked as named, no routing), `"fast": true`, and
`"max_tokens"`. The choice, by the request:

- a model named: that model;
- `task` `code`, `math` or `reason`: the best (`quality_optimized`);
- `fast`: the quickest (`latency_optimized`);
- a short prompt (under 200 characters) for `chat` or `classify`: the
  cheapest (`cost_optimized`);
- anything else: the host's balance of all four (`standard`).

Output, JSON: the answer, who answered, the tokens it cost, and the choice
with its reason. The call's payer pays the tokens; a request no provider
answers is a `run-error` saying why, and costs nothing.
"""

import json

import wit_world
from wit_world.imports import llm
from wit_world.imports.fuelhost_host_types import RunError_InvalidInput, RunError_Denied, RunError_Failed
from componentize_py_types import Err

SHORT = 200
CAREFUL = {"code", "math", "reason"}
CHEAP = {"chat", "classify"}


def choose(request: dict):
    """The model choice for `request`, and why."""
    if request.get("model"):
        return llm.ModelChoice_Named(request["model"]), "named by the caller"
    task = request.get("task", "chat")
    if task in CAREFUL:
        return llm.ModelChoice_Routed(llm.Route.QUALITY_OPTIMIZED), f"a {task} task: the best model"
    if request.get("fast"):
        return llm.ModelChoice_Routed(llm.Route.LATENCY_OPTIMIZED), "asked to be fast: the quickest model"
    if task in CHEAP and len(request["prompt"]) < SHORT:
        return llm.ModelChoice_Routed(llm.Route.COST_OPTIMIZED), f"a short {task}: the cheapest model"
    return llm.ModelChoice_Routed(llm.Route.STANDARD), "no strong preference: the host's standard balance"


def describe(choice) -> str:
    if isinstance(choice, llm.ModelChoice_Named):
        return f"named:{choice.value}"
    return f"routed:{choice.value.name.lower()}"


class WitWorld(wit_world.WitWorld):
    def run(self, input: bytes) -> bytes:
        try:
            request = json.loads(input)
        except ValueError as e:
            raise Err(RunError_InvalidInput(f"input is not JSON: {e}"))
        if not isinstance(request, dict) or not isinstance(request.get("prompt"), str):
            raise Err(RunError_InvalidInput('send {"prompt": "...", "task": "chat"}'))
        choice, why = choose(request)
        ask = llm.Request(
            messages=[llm.Message(role=llm.Role.USER, content=request["prompt"])],
            model=choice,
            max_tokens=int(request.get("max_tokens", 128)),
            temperature=None,
            response_schema=None,
        )
        try:
            answer = llm.complete(ask)
        except Err as e:
            error = e.value
            kind = type(error).__name__.split("_")[-1]
            message = f"{kind}: {error.value}"
            if kind in ("Invalid",):
                raise Err(RunError_InvalidInput(message))
            if kind in ("Denied", "InsufficientBudget"):
                raise Err(RunError_Denied(message))
            raise Err(RunError_Failed(message))
        return json.dumps({
            "choice": describe(choice),
            "why": why,
            "text": answer.text,
            "provider": answer.provider,
            "model": answer.model,
            "tokens": answer.input_tokens + answer.output_tokens,
        }).encode()
