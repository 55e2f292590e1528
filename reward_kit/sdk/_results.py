"""Typed per-item results of a batch: a result, or the error that item met, never both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._errors import EvaluationError, RewardKitError, error_class_for_code
from .._models import EvaluateResult
from .._vocabulary import FAILED_STATUSES, Status

__all__ = ["ItemError", "ItemResult", "ItemStatus"]

ItemStatus = Status  # the vocabulary's item statuses, under the SDK's historical name
# EvaluateResult.model_validate without its Python wrapper: a quarter of its cost per result.
_validate_result = EvaluateResult.__pydantic_validator__.validate_python


@dataclass(frozen=True)
class ItemError:
    """Why one item has no result: the server's wire ``code`` and message."""

    code: str
    message: str

    def exception(self) -> RewardKitError:
        """The exception class of reward-kit's tree for this code (for ``raise item.error...``)."""
        cls = error_class_for_code(self.code) or EvaluationError
        return cls(self.message, code=self.code)


@dataclass(frozen=True)
class ItemResult:
    """One item of a batch, at its position in the input.

    >>> r = ItemResult(index=0, status="timeout", result=None,
    ...                error=ItemError("timeout", "ran past 5s"), duration_ms=5000.0)
    >>> r.ok, r.score
    (False, None)
    """

    index: int
    status: ItemStatus
    result: EvaluateResult | None
    error: ItemError | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.result is not None

    @property
    def score(self) -> float | None:
        """The score when there is a valid one; ``None`` for a failure or an invalid score, so
        an error can never be mistaken for a 0."""
        if self.result is None or self.status != "ok" or not self.result.is_score_valid:
            return None
        return self.result.score

    @classmethod
    def from_wire(cls, raw: dict[str, Any], index: int) -> ItemResult:
        status = raw.get("status")
        if status == "ok":
            return cls(
                index,
                "ok",
                _validate_result(raw.get("result")),
                None,
                float(raw.get("duration_ms") or 0.0),
            )
        raw_error = raw.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        return cls(
            index,
            status if status in FAILED_STATUSES else "error",
            None,
            ItemError(
                str(error.get("code") or "function_error"),
                str(error.get("message") or f"item failed with status {status!r}"),
            ),
            float(raw.get("duration_ms") or 0.0),
        )
