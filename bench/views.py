"""The framework ceiling: a bare DRF endpoint that validates a standard event and inserts one row."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.models import CeilingRow


class CeilingInput(serializers.Serializer):
    title_rule = serializers.CharField(max_length=512)
    event_status = serializers.ChoiceField(choices=["Critical", "Warning", "Info", "Ok"])
    alert_key = serializers.CharField(max_length=255, required=False)
    labels = serializers.DictField(child=serializers.CharField(max_length=2048), required=False)


class CeilingApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        data = CeilingInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = CeilingRow.objects.create(
            title=data.validated_data["title_rule"], status=data.validated_data["event_status"], payload=request.data
        )
        return Response({"data": {"id": row.pk}})
