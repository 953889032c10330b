"""`Status` bodies exactly as kube-apiserver writes them (field order included), as JSON bytes."""

from __future__ import annotations

import json

from .resources import Resource

REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource has expired"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "an error on the server (\"\") has prevented the request from succeeding"),
    502: ("BadGateway", "the server received an invalid response from an upstream server"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be "
                     "processing the request"),
}

EXPIRED_CONTINUE = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.")


def status_body(code: int, message: str | None = None, reason: str | None = None,
                details: dict | None = None) -> bytes:
    """A failure Status; reason and message default to what the API server says for `code`."""
    default_reason, default_message = REASONS.get(code, ("", f"the server responded with the status code {code}"))
    document = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message if message is not None else default_message,
                "reason": reason if reason is not None else default_reason}
    if details is not None:
        document["details"] = details
    document["code"] = code
    return json.dumps(document, separators=(",", ":")).encode()


def _details(resource: Resource, name: str) -> dict:
    details = {}
    if name:
        details["name"] = name
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: Resource, name: str) -> bytes:
    return status_body(404, f'{resource.qualified} "{name}" not found', "NotFound", _details(resource, name))


def forbidden(resource: Resource, name: str, reason: str) -> bytes:
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    return status_body(403, f"{subject} is forbidden: {reason}", "Forbidden", _details(resource, name))


def bad_request(message: str) -> bytes:
    return status_body(400, message, "BadRequest")


def method_not_allowed() -> bytes:
    return status_body(405, details={})
