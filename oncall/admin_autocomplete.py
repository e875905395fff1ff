"""Django's autocomplete widgets, made safe for junk ids: a posted id the database cannot hold (a word, a superscript
digit, a number past 64 bits) is left out of the lookup that shows the chosen rows again, so the form comes back
with its "Select a valid choice" error instead of a 500; many-to-many fields also refuse such an id up front.
Admin classes with `autocomplete_fields` mix in `CheckedAutocomplete`."""

from __future__ import annotations

from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.forms import ModelMultipleChoiceField

from oncall.lib.ids import id_in_range


class _CheckedIds:
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if v in ("", None) or id_in_range(v)], attr)


class CheckedAutocompleteSelect(_CheckedIds, AutocompleteSelect):
    pass


class CheckedAutocompleteSelectMultiple(_CheckedIds, AutocompleteSelectMultiple):
    pass


class CheckedModelMultipleChoiceField(ModelMultipleChoiceField):
    """Django checks each posted id can be looked up, but a number past 64 bits passes that check and then fails
    the query of them all (OverflowError); it is refused here as any other id that names no row."""

    def _check_values(self, value):
        for pk in value if isinstance(value, (list, tuple)) else ():
            if not id_in_range(pk):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)


class CheckedAutocomplete:
    """For a ModelAdmin or an inline: its autocomplete fields use the widgets above."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
            kwargs.setdefault("form_class", CheckedModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)
