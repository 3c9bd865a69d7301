"""How the S3 client reads an error answer it got through obstore: the status and S3's error
code out of the error's text, which codes are transient, a redirect to another region and
the bucket's region (as object_store's resolve_bucket_region finds it)."""

from __future__ import annotations

import re

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
STATUS_RE = re.compile(r"status code: (\d{3})")
# the error code as S3's XML body gives it, or as obstore words a bulk-delete failure
# ("DeleteObjects request failed for key ...: Access Denied (code: AccessDenied)")
CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>|\(code: ([A-Za-z]{1,100})\)")
REGION_RE = re.compile(r"<Region>([a-z]{2}(?:-[a-z]+)+-\d{1,2})</Region>")
REGION_NAME_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
TIMED_OUT = ("timed out", "Timeout", "TimedOut", "deadline has elapsed")


def redirected(text: str, status: int, code: str) -> bool:
    """An answer saying the bucket lives elsewhere (another region): a 301/307 (obstore
    reports one without a Location as a redirect), or S3's 400 naming the right region."""
    if "redirect" in text.lower() and not status:
        return True
    return status in (301, 307) or (status == 400 and code == "AuthorizationHeaderMalformed")


def bucket_region(bucket: str) -> str | None:
    """The bucket's region from an unsigned HEAD on the global endpoint (x-amz-bucket-region
    comes back even on 301 and 403), as object_store's resolve_bucket_region does."""
    import http.client

    conn = http.client.HTTPSConnection("s3.amazonaws.com", timeout=5)
    try:
        conn.request("HEAD", f"/{bucket}")
        return conn.getresponse().getheader("x-amz-bucket-region")
    except OSError:
        return None
    finally:
        conn.close()


def moved_to(text: str, bucket: str, region: str) -> str | None:
    """The region an error answer (`text`) says the bucket lives in, when it is a redirect
    to another region than `region` (looked up on the global endpoint if the answer names
    none); None otherwise."""
    match, code = STATUS_RE.search(text), CODE_RE.search(text)
    if not redirected(
        text, int(match.group(1)) if match else 0, (code.group(1) or "") if code else ""
    ):
        return None
    found = REGION_RE.search(text)
    other = found.group(1) if found else bucket_region(bucket)
    if not other or other == region or not REGION_NAME_RE.fullmatch(other):
        return None
    return other
