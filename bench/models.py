from django.db import models


class CeilingRow(models.Model):
    """The one row the bare DRF endpoint inserts per request."""

    title = models.CharField(max_length=512)
    status = models.CharField(max_length=10)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
