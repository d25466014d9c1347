"""`page`/`per_page` as Clarifai clients send them (1-based pages, default 128 per page)."""

from __future__ import annotations

from scopegate.contract.status import invalid_argument

DEFAULT_PER_PAGE = 128
MAX_PER_PAGE = 1000


def offset_limit(page: int, per_page: int) -> tuple[int, int]:
    per_page = per_page or DEFAULT_PER_PAGE
    if per_page > MAX_PER_PAGE:
        raise invalid_argument(f"per_page must be at most {MAX_PER_PAGE}.")
    page = page or 1
    return (page - 1) * per_page, per_page
