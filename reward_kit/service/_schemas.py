"""OpenAPI documentation of the wire format. The handlers validate with faster TypedDicts
(see _wire.py); these models only describe the same shapes for /docs and schema-driven tools."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from .._models import EvaluateResult, Message
from .._vocabulary import Status
from ..engine import MAX_JSON_DEPTH

__all__ = ["REQUEST_BODIES", "RESPONSES", "component_schemas"]


class EvaluateRequest(BaseModel):
    """One item. Any other top-level key is passed to the function as a keyword argument.
    Arrays and objects may be nested at most 100 levels deep inside an item."""

    model_config = ConfigDict(extra="allow")

    messages: list[Message] = Field(min_length=1)
    ground_truth: Any = None
    tools: list[Any] | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    function: str | None = None


class EvaluateResponse(EvaluateResult):
    function: str
    duration_ms: float


class BatchEvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each item should be an EvaluateRequest, but items are validated one by one: an invalid
    # item is answered in its own slot (status "invalid") and never fails the batch, so the
    # schema accepts any JSON value here.
    items: list[Any] = Field(
        description="EvaluateRequest objects; an invalid one gets status 'invalid' in its slot"
    )
    function: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class BatchItemResult(BaseModel):
    """One slot of a batch answer (the SDK reads it as ``reward_kit.sdk.ItemResult``)."""

    index: int
    status: Status
    result: EvaluateResult | None
    error: ErrorDetail | None
    duration_ms: float


class BatchEvaluateResponse(BaseModel):
    results: list[BatchItemResult]


class ErrorResponse(BaseModel):
    error: ErrorDetail


_MODELS: list[type[BaseModel]] = [
    EvaluateRequest,
    EvaluateResponse,
    BatchEvaluateRequest,
    BatchEvaluateResponse,
    ErrorResponse,
]


def component_schemas() -> dict[str, Any]:
    _, schema = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    return dict(schema.get("$defs", {}))


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


# The handlers read the path themselves (they take the raw request for speed), so the name
# parameter is declared here for the schema.
NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The reward function's name (see GET /functions)",
}

REQUEST_BODIES = {
    "evaluate": {"requestBody": {"required": True, **_ref("EvaluateRequest")}},
    "batch": {"requestBody": {"required": True, **_ref("BatchEvaluateRequest")}},
}


def with_name(extra: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route with a ``{name}`` segment."""
    return {**extra, "parameters": [NAME_PARAMETER]}


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, **_ref("ErrorResponse")}
    for status, text in [
        (400, "Malformed JSON, or no function named while several are served"),
        (401, "No credential"),
        (403, "Credential not accepted"),
        (404, "Unknown function"),
        (408, "The body did not arrive within --body-timeout"),
        (413, "Body or batch over the server's limit"),
        (415, "The body is not declared JSON (Content-Type: application/json)"),
        (421, "Host not served: without auth only loopback names (see --allowed-hosts)"),
        (
            422,
            f"Invalid body, or JSON nested past {MAX_JSON_DEPTH} levels (the message names the "
            "field)",
        ),
        (
            429,
            "Every evaluation slot is taken and the request could not wait for one (queue full, "
            "or a wait past --queue-timeout); see Retry-After",
        ),
        (503, "The server is shutting down (shutting_down); retry, see Retry-After"),
    ]
}

RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "evaluate": {
        200: {"description": "The function's result", **_ref("EvaluateResponse")},
        **_ERRORS,
        500: {"description": "function_error or crashed", **_ref("ErrorResponse")},
        504: {"description": "The function ran past its deadline", **_ref("ErrorResponse")},
    },
    "batch": {
        200: {"description": "One result per item, in order", **_ref("BatchEvaluateResponse")},
        **_ERRORS,
    },
}
