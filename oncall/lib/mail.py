"""An email backend for the embedded mode: prints who, what and the text part, so a newcomer reads the page."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend


class ConsoleTextBackend(DjangoConsoleBackend):
    """Django's console backend, without the MIME boundaries and the HTML alternative."""

    def write_message(self, message) -> None:
        rule = "-" * 79
        self.stream.write(
            f"{rule}\nEmail from {message.from_email}\nTo: {', '.join(message.to)}\n"
            f"Subject: {message.subject}\n\n{message.body.strip()}\n{rule}\n"
        )
