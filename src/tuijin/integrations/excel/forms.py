"""The upload form; the file's contents are checked by parsing.open_upload, not here."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ImportJob


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("文件"), allow_empty_file=True,  # the parser explains an empty file better
        help_text=_("Excel(.xlsx) 或 CSV 文件"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv", "class": "form-control"}),
    )
    dup_mode = forms.ChoiceField(
        label=_("与已有客户重复时"), choices=ImportJob.DupMode.choices, initial=ImportJob.DupMode.SKIP,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
