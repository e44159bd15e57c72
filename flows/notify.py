"""Publishing notifications: a Prefect event each, and the configured webhook."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from service.notify import Notification, NotificationError, send_webhook
from service.settings import Settings


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def _deliver(notification: Notification, url: str, secret: str | None) -> None:
    send_webhook(notification, url, secret)


def publish(notifications: list[Notification | None]) -> None:
    """Emit each notification as a Prefect event; a webhook that stays down is logged, not fatal."""
    settings = Settings()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    for notification in filter(None, notifications):
        emit_event(notification.event, resource=notification.resource, payload=notification.body())
        if settings.webhook_url:
            try:
                _deliver(notification, settings.webhook_url, secret)
            except NotificationError as exc:
                get_run_logger().warning("notification not delivered: %s", exc)
