"""Background downloads of input URLs: a small thread pool owned by the server process.

PostInputs stores a URL input as INPUT_DOWNLOAD_PENDING and queues it here; a worker
fetches it (media.fetch_image: size cap, total deadline), decodes it and records
INPUT_DOWNLOAD_SUCCESS with the image, or INPUT_DOWNLOAD_FAILED with the reason. The
outcome is written only while the input is still pending, so a deleted input stays deleted.

Downloads that a stopped or crashed server left pending are queued again on start
(`resume`): the URL is stored, so nothing is lost, and a second writer (another instance
fetching the same input) changes nothing once the first has recorded the outcome.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from scopegate.contract.status import C
from scopegate.media import images as media
from scopegate.media.settings import MediaSettings
from scopegate.store import inputs

log = logging.getLogger("scopegate.media.downloads")


class Downloader:
    def __init__(self, engine: Engine, settings: MediaSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._pool = ThreadPoolExecutor(
            max_workers=settings.download_workers, thread_name_prefix="download"
        )

    def schedule(self, input_pk: int, url: str) -> None:
        self._pool.submit(self._run, input_pk, url)

    def resume(self) -> int:
        """Queue every download left pending; how many there were."""
        with self._engine.connect() as conn:
            waiting = inputs.pending(conn, C.INPUT_DOWNLOAD_PENDING)
        for pk, url in waiting:
            self.schedule(pk, url)
        if waiting:
            log.info("resuming %d pending input downloads", len(waiting))
        return len(waiting)

    def close(self) -> None:
        """Stop taking work; downloads under way finish (each within the fetch timeout)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, input_pk: int, url: str) -> None:
        try:
            outcome = self._fetch(url)
        except Exception:  # a bug must not leave the input pending forever
            log.exception("download of input %s failed unexpectedly", input_pk)
            outcome = (C.INPUT_DOWNLOAD_FAILED, "Internal error while downloading.", None, None)
        code, details, data, facts = outcome
        try:
            with self._engine.begin() as conn:
                inputs.finish_download(
                    conn,
                    input_pk,
                    from_code=C.INPUT_DOWNLOAD_PENDING,
                    to_code=code,
                    details=details,
                    image=data,
                    facts=facts,
                )
        except Exception:
            log.exception("cannot record the download of input %s", input_pk)

    def _fetch(self, url: str):
        limits = self._settings
        try:
            data = media.fetch_image(
                url,
                max_bytes=limits.max_image_bytes,
                timeout=limits.fetch_timeout,
                allow_private=limits.fetch_private_hosts,
                connect_to=limits.fetch_connect_to,
            )
            info = media.decode_image(
                data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
            )
        except media.MediaError as error:
            return C.INPUT_DOWNLOAD_FAILED, error.reason, None, None
        facts = inputs.ImageFacts(info.width, info.height, info.mime, info.mode)
        return C.INPUT_DOWNLOAD_SUCCESS, "", data, facts
