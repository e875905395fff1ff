"""`manage.py create_api_token USERNAME NAME`: a personal API token for a person, printed once."""

from django.core.management.base import BaseCommand, CommandError

from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.models import User
from oncall.services.tokens import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for USERNAME and print it (it is not stored and cannot be shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("name", help="What the token is for, e.g. 'laptop scripts'.")

    def handle(self, *args, username: str, name: str, **options) -> None:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active person with the username {username!r}.")
        try:
            _token, value = api_token_create(user=user, name=name, now=clock.now())
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(value)
