"""What the app-push platforms (FCM, APNs, Web Push) share: the message, one device's result, and the rule that
turns the results of all of a person's devices into one outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from channels_app.base import Outcome, SendResult


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    incident_id: int
    severity: str
    event: str
    url: str
    ttl: int

    @property
    def critical(self) -> bool:
        return self.severity == "Critical"

    @property
    def collapse_key(self) -> str:
        # The same incident's notifications replace each other on the device instead of piling up.
        return f"incident-{self.incident_id}"

    def data(self) -> dict[str, str]:
        """The key-value data the app gets with the notification (strings only: FCM refuses anything else)."""
        return {
            "incident_id": str(self.incident_id),
            "severity": self.severity,
            "event": self.event,
            "url": self.url,
        }


def _cut(text: str, keep: int) -> str:
    return text if keep >= len(text) else text[:keep].rstrip() + "…"


def shortened(message: PushMessage, *, size: Callable[[PushMessage], int], limit: int) -> PushMessage:
    """`message` with its body (then, if that is not enough, its title) cut with "…" until `size(message)`, the
    bytes of the payload a platform sends, is within `limit`.

    The slots cap the texts in raw UTF-8, but JSON escaping grows them when they are sent (a quote or a backslash
    takes 2 bytes, a tab or a newline 2): a description full of them could push the payload past the platform's
    limit, which it refuses for good (APNs 413 PayloadTooLarge)."""
    for field in ("body", "title"):
        if size(message) <= limit:
            break
        text = getattr(message, field)
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if size(replace(message, **{field: _cut(text, middle)})) <= limit:
                low = middle
            else:
                high = middle - 1
        message = replace(message, **{field: _cut(text, low)})
    return message


@dataclass(frozen=True)
class DeviceResult:
    device_id: int
    platform: str
    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    gone: bool = False  # the push service says the token no longer exists: forget the device
    retry_after: float | None = None

    @classmethod
    def sent(cls, device_id: int, platform: str, provider_id: str = "") -> DeviceResult:
        return cls(device_id, platform, Outcome.SENT, provider_id=provider_id)

    @classmethod
    def retryable(cls, device_id: int, platform: str, error: str, retry_after: float | None = None) -> DeviceResult:
        return cls(device_id, platform, Outcome.RETRYABLE, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, device_id: int, platform: str, error: str, *, gone: bool = False) -> DeviceResult:
        return cls(device_id, platform, Outcome.PERMANENT, error=error, gone=gone)


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    value = {key.lower(): v for key, v in headers.items()}.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return None


def combine(results: Sequence[DeviceResult]) -> SendResult:
    """One outcome for a push to all of a person's devices: sent if any device took it; else retryable if any
    failure may pass; else permanent. Gone devices are reported for removal whatever the outcome."""
    detail = {
        "devices": [
            {"device_id": r.device_id, "platform": r.platform, "outcome": r.outcome.value, "error": r.error[:200]}
            for r in results
        ]
    }
    gone = tuple(r.device_id for r in results if r.gone)
    pushed = tuple(r.device_id for r in results if r.outcome == Outcome.SENT)
    errors = "; ".join(f"{r.platform} device {r.device_id}: {r.error}" for r in results if r.error)
    if pushed:
        ids = ",".join(r.provider_id for r in results if r.outcome == Outcome.SENT and r.provider_id)
        return SendResult.sent(ids[:200], gone_devices=gone, pushed_devices=pushed, detail=detail)
    retryable = [r for r in results if r.outcome == Outcome.RETRYABLE]
    if retryable:
        waits = [r.retry_after for r in retryable if r.retry_after]
        return SendResult.retryable(errors, retry_after=max(waits) if waits else None, gone_devices=gone, detail=detail)
    return SendResult.permanent(errors or "no device took the push", gone_devices=gone, detail=detail)
