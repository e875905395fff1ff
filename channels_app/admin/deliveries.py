"""Admin of deliveries (every message to a person or a bot, with its attempts) and daily usage."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_app.models import DailyUsage, Delivery


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "incident",
        "method",
        "address",
        "recipient",
        "bot",
        "level_display",
        "round",
        "event",
        "status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "method", "event")
    search_fields = ("address", "provider_id", "=incident__id", "recipient__username", "recipient__email")
    list_select_related = ("incident", "recipient", "bot")
    date_hierarchy = "created_at"
    readonly_fields = (
        "incident",
        "escalation_run",
        "level",
        "round",
        "recipient",
        "bot",
        "recipient_key",
        "address",
        "method",
        "event",
        "dedup_key",
        "status",
        "attempts",
        "next_attempt_at",
        "provider_id",
        "error",
        "attempt_log",
        "template_set",
        "template_error",
        "created_at",
        "last_attempt_at",
        "sent_at",
        "delivered_at",
        "updated_at",
    )

    @admin.display(description=_("level"), ordering="level")
    def level_display(self, obj: Delivery) -> int:
        return obj.level + 1

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The row is what makes a page go out once: deleted, its dedup key is free and a retried step pages the
        # person again; deleted before it was sent, the page is lost. Deliveries go only with their incident.
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(admin.ModelAdmin):
    """Calls and SMS per person and day, against VOICE_DAILY_QUOTA and SMS_DAILY_QUOTA."""

    list_display = ("day", "person", "method", "count", "refused", "notice_sent_at")
    list_filter = ("method", "day")
    search_fields = ("person__username",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
