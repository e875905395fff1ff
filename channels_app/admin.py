from django.contrib import admin

from channels_app.models import Delivery


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "incident",
        "method",
        "address",
        "recipient",
        "level_display",
        "round",
        "event",
        "status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "method", "event")
    search_fields = ("address", "provider_id", "=incident__id", "recipient__username", "recipient__email")
    list_select_related = ("incident", "recipient")
    date_hierarchy = "created_at"
    readonly_fields = (
        "incident",
        "escalation_run",
        "level",
        "round",
        "recipient",
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
        "created_at",
        "last_attempt_at",
        "sent_at",
        "updated_at",
    )

    @admin.display(description="level", ordering="level")
    def level_display(self, obj: Delivery) -> int:
        return obj.level + 1

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
