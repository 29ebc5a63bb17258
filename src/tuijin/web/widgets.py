"""Select widgets that render their options in Python instead of one template per option.

Django renders every <option> through the template engine. A customer page carries two staff
pickers (team member, transfer target) with every colleague in them: at scale M (227 users) the
options took most of the page's rendering time. Same markup, same context (Django's own
get_context builds it), only the rendering is done here.
"""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import mark_safe


class FastSelectMixin:
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [format_html("<select name=\"{}\"{}>", widget["name"], flatatt(widget["attrs"]))]
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html("<optgroup label=\"{}\">", group_name))
            for option in options:
                parts.append(format_html("<option value=\"{}\"{}>{}</option>",
                                         "" if option["value"] is None else option["value"],
                                         flatatt(option["attrs"]), option["label"]))
            if group_name:
                parts.append("</optgroup>")
        parts.append("</select>")
        return mark_safe("".join(parts))  # every piece above went through format_html


class FastSelect(FastSelectMixin, forms.Select):
    pass


class FastSelectMultiple(FastSelectMixin, forms.SelectMultiple):
    pass


def speed_up(widget: forms.Widget) -> None:
    """Swap a plain Select/SelectMultiple for its fast twin in place (attrs and choices kept)."""
    if type(widget) is forms.Select:
        widget.__class__ = FastSelect
    elif type(widget) is forms.SelectMultiple:
        widget.__class__ = FastSelectMultiple
