"""Validation of the OpenAI-shaped request bodies the gateway accepts.

Only what the gateway itself relies on is checked strictly; unknown fields are allowed and passed to
upstreams (the OpenAI API keeps adding fields, and local backends ignore them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from llmops.core.errors import InvalidInputError

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_required(self) -> Message:
        if self.content is None and self.role in ("system", "developer", "user"):
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema_required(self) -> ResponseFormat:
        if self.type == "json_schema" and not (
            self.json_schema and isinstance(self.json_schema.get("schema", {}), dict)
        ):
            raise ValueError("json_schema response_format needs json_schema.schema")
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    user: str | None = Field(None, max_length=256)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = Field(None, max_length=256)

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            items: list[Any] = [self.input]
        else:
            items = list(self.input)
        if not items:
            raise InvalidInputError("input must not be empty", param="input")
        if not all(isinstance(i, str) for i in items):
            raise InvalidInputError("token-array input is not supported; send strings", param="input")
        if len(items) > 2048:
            raise InvalidInputError("at most 2048 inputs per request", param="input")
        return [str(i) for i in items]


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _is_type_tag(part: object) -> bool:
    """pydantic puts union member names (``str``, ``list[...]``, ``function-after[...]``) into error paths."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part)


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate into ``model``; the first error becomes an InvalidInputError naming its field."""
    if not isinstance(data, dict):
        raise InvalidInputError("request body must be a JSON object", param=None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not _is_type_tag(p))
        kind = "is required" if err["type"] == "missing" else err["msg"]
        raise InvalidInputError(f"invalid {loc or 'body'}: {kind}", param=loc or None, code="invalid_value") from exc
