"""A fake Bedrock runtime: ``POST /model/{modelId}/converse`` in the Converse shapes, every
request's SigV4 signature checked with botocore and refused the way AWS refuses it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fake_llm_behaviours import HttpError, RecordedRequest, Reply
from tests.fake_llm_server import FakeLLMServer, json_response
from tests.fake_llm_sigv4 import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, sigv4_problem

BEDROCK_CHAT = re.compile(r"^/model/(?P<model>[^/?]+)/converse$")
BEDROCK_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"

#: The x-amzn-ErrorType Bedrock sends for a status (others: InternalServerException or
#: ValidationException).
BEDROCK_ERROR_DEFAULTS: dict[int, str] = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class FakeBedrock(FakeLLMServer):
    """Bedrock runtime: ``POST /model/{modelId}/converse``, SigV4 checked."""

    kind = "bedrock"

    def __init__(
        self,
        *,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        region: str = TEST_REGION,
        session_token: str | None = None,
        verify_signatures: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.session_token = session_token
        self.verify_signatures = verify_signatures
        #: Whether each chat request's signature verified, in order.
        self.signature_ok: list[bool] = []
        #: Why a signature failed (None when it verified), parallel to signature_ok.
        self.signature_problems: list[str | None] = []

    def _chat_route(self, request: web.Request) -> tuple[bool, str | None]:
        found = BEDROCK_CHAT.match(request.raw_path)
        if request.method == "POST" and found is not None:
            return True, unquote(found["model"])
        return False, None

    def _refusal(self, request: web.Request, recorded: RecordedRequest) -> web.Response | None:
        if not self.verify_signatures:
            return None
        problem = sigv4_problem(
            request.method,
            f"http://{request.host}{request.raw_path}",
            recorded.headers,
            recorded.raw_body,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            session_token=self.session_token,
        )
        self.signature_ok.append(problem is None)
        self.signature_problems.append(problem)
        return None if problem is None else self._signature_error(problem)

    def _reply(self, reply: Reply, model: str) -> dict[str, Any]:
        how = reply.arguments_as or "object"
        blocks: list[dict[str, Any]] = []
        if reply.content:
            blocks.append({"text": reply.content})
        for name, arguments in reply.tool_calls:
            use = {
                "toolUseId": f"tooluse_{self._next_id():022d}",
                "name": name,
                "input": self._arguments(arguments, how),
            }
            blocks.append({"toolUse": use})
        stop = reply.done_reason or ("tool_use" if reply.tool_calls else "end_turn")
        usage: dict[str, int] = {}
        if reply.input_tokens is not None:
            usage["inputTokens"] = reply.input_tokens
        if reply.output_tokens is not None:
            usage["outputTokens"] = reply.output_tokens
        if reply.input_tokens is not None and reply.output_tokens is not None:
            usage["totalTokens"] = reply.input_tokens + reply.output_tokens
        data: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": blocks}},
            "stopReason": stop,
            "metrics": {"latencyMs": 300 + 20 * (reply.output_tokens or 10)},
        }
        if usage:
            data["usage"] = usage
        return data

    def _no_message(self, model: str) -> dict[str, Any]:
        return {"output": {}, "stopReason": "end_turn", "metrics": {"latencyMs": 12}}

    def _no_tools(self, model: str) -> web.Response:
        return self._error(HttpError(400, "This model doesn't support tool use.", None))

    def _error(self, error: HttpError) -> web.Response:
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            headers["Retry-After"] = error.retry_after
        kind = error.error_type or BEDROCK_ERROR_DEFAULTS.get(
            error.status,
            "InternalServerException" if error.status >= 500 else "ValidationException",
        )
        headers["x-amzn-ErrorType"] = f"{kind}:{BEDROCK_ERROR_NAMESPACE}"
        headers["x-amzn-RequestId"] = f"00000000-0000-4000-8000-{self._next_id():012d}"
        return json_response(error.status, {"message": error.message}, headers)

    def _signature_error(self, problem: str) -> web.Response:
        if problem == "no Authorization header":
            return self._error(
                HttpError(
                    403, "Missing Authentication Token", None, "MissingAuthenticationTokenException"
                )
            )
        if problem.startswith("unknown access key"):
            return self._error(
                HttpError(
                    403,
                    "The security token included in the request is invalid.",
                    None,
                    "UnrecognizedClientException",
                )
            )
        message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details."
        )
        return self._error(HttpError(403, message, None, "InvalidSignatureException"))
