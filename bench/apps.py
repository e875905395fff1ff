from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Only installed by bench.settings: the framework-ceiling endpoint and its table."""

    name = "bench"
    label = "bench"
