"""What the 1C connector needs to know about one published infobase; mapped from an ``[[onec]]`` table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OnecConnection:
    name: str
    url: str  # the publication, e.g. http://1c.local/accounting (``/odata/standard.odata`` is added)
    user: str
    password: str = field(default="", repr=False)
    timeout: float = 120.0  # per read: a large page from a loaded 1C server takes a while
    retries: int = 3  # for idempotent requests (GET, PATCH) on cut connections, 502-504 and 500 "-1"
    concurrency: int = 2  # requests at once; 1C serves each on a licensed session, keep it low
    page_size: int = 1000

    @property
    def service_url(self) -> str:
        base = self.url.rstrip("/")
        if not base.endswith("/odata/standard.odata"):
            base += "/odata/standard.odata"
        return base + "/"
