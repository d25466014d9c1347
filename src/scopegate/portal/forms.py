"""Form bodies and the few field conversions the pages share.

Forms are `application/x-www-form-urlencoded` (no file uploads), so the standard library
parses them; no multipart parser is needed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from urllib.parse import parse_qsl

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.requests import Request

from scopegate.contract.status import ApiError, invalid_argument

MAX_FORM_BYTES = 64 * 1024
ALL_SCOPES = "All"


class FormTooLargeError(ValueError):
    pass


async def read_form(request: Request) -> FormData:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormTooLargeError(f"The form exceeds {MAX_FORM_BYTES} bytes.")
    return FormData(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def text(form: FormData, name: str, limit: int = 1000) -> str:
    return str(form.get(name) or "").strip()[:limit]


def chosen_scopes(form: FormData) -> list[str]:
    """The ticked scopes; `All` alone when it is ticked (it grants everything)."""
    names = [str(v) for v in form.getlist("scopes") if str(v).strip()]
    return [ALL_SCOPES] if ALL_SCOPES in names else sorted(set(names))


def expiry_timestamp(raw: str) -> Timestamp | None:
    """A date from `<input type=date>` means: valid through the end of that day, UTC."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise invalid_argument(f"'{raw}' is not a date (YYYY-MM-DD).") from None
    ts = Timestamp()
    ts.FromDatetime(datetime.combine(day, time(23, 59, 59), tzinfo=UTC))
    return ts


def expiry_date(ts: Timestamp | None) -> str:
    """The value for a date input showing a key's expiry ('' when it has none)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=UTC).date().isoformat()


def error_text(error: ApiError) -> str:
    """A readable sentence for a handler's error: description, then details."""
    if error.details and error.details != error.description:
        return f"{error.description}: {error.details}"
    return error.description
