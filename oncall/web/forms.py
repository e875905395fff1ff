"""Forms of the engineer pages: they read and check input; the services do the work."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from oncall.lib.ids import id_in_range
from oncall.models import Progress, Severity
from oncall.services.lifecycle import COMMENT_MAX, REASON_MAX, SNOOZE_MAX_MINUTES, SNOOZE_MIN_MINUTES

SCOPES = (("mine", _("Mine")), ("channels", _("My channels")), ("all", _("All I may see")))
SNOOZE_PRESETS = (
    (30, _("30 minutes")),
    (60, _("1 hour")),
    (120, _("2 hours")),
    (240, _("4 hours")),
    (720, _("12 hours")),
    (1440, _("24 hours")),
)


class IncidentFilterForm(forms.Form):
    scope = forms.ChoiceField(choices=SCOPES, required=False, initial="channels")
    progress = forms.MultipleChoiceField(choices=Progress.choices, required=False)
    severity = forms.MultipleChoiceField(choices=Severity.choices, required=False)
    channel = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    q = forms.CharField(required=False, max_length=200, label=_("Search"))

    def __init__(self, *args, channels=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All channels")), *((c.pk, c.name) for c in channels)]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SnoozeForm(forms.Form):
    minutes = forms.TypedChoiceField(coerce=int, choices=SNOOZE_PRESETS)

    def clean_minutes(self) -> int:
        minutes = self.cleaned_data["minutes"]
        if not SNOOZE_MIN_MINUTES <= minutes <= SNOOZE_MAX_MINUTES:
            raise forms.ValidationError(_("Choose between 1 minute and 24 hours."))
        return minutes


class CommentForm(forms.Form):
    text = forms.CharField(max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 3}), label=_("Comment"))


class PeopleField(forms.ModelMultipleChoiceField):
    """People by id; an id no row can have is an invalid choice like any unknown one, not a database error."""

    def _check_values(self, value):
        for pk in value:
            if not id_in_range(pk):
                message = self.error_messages["invalid_choice"]
                raise ValidationError(message, code="invalid_choice", params={"value": pk})
        return super()._check_values(value)


class PeopleForm(forms.Form):
    people = PeopleField(queryset=None, label=_("People"))

    def __init__(self, *args, people_queryset=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["people"].queryset = people_queryset


class EscalateForm(forms.Form):
    level = forms.TypedChoiceField(coerce=int, label=_("Level"))

    def __init__(self, *args, levels: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["level"].choices = [(n, _("Level %(n)d") % {"n": n}) for n in range(1, levels + 1)]
