"""The fast select widgets render what Django's own Select/SelectMultiple render (same options,
same selection, same attributes, labels escaped), just without a template per option."""

from __future__ import annotations

from html.parser import HTMLParser

from django import forms

from tuijin.web.widgets import FastSelect, FastSelectMultiple, speed_up


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.items = []

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, sorted(attrs)))

    def handle_endtag(self, tag):
        self.items.append(("/" + tag, []))

    def handle_data(self, data):
        if data.strip():
            self.items.append(("text", data.strip()))


def parsed(html):
    p = _Collect()
    p.feed(str(html))
    return p.items


CHOICES = [("", "—"), ("a", "甲 <b>&"), ("组", [("x", "X 选项"), ("y", "Y \"quoted\"")]), (3, "三")]


def test_select_renders_like_django():
    for value in (None, "", "a", "y", 3):
        ours = FastSelect(choices=CHOICES, attrs={"class": "form-select", "required": True})
        django = forms.Select(choices=CHOICES, attrs={"class": "form-select", "required": True})
        assert parsed(ours.render("pick", value, attrs={"id": "id_pick"})) == \
            parsed(django.render("pick", value, attrs={"id": "id_pick"}))
    html = FastSelect(choices=CHOICES).render("pick", "a")
    assert "&lt;b&gt;&amp;" in html and "<b>" not in html


def test_select_multiple_renders_like_django():
    ours = FastSelectMultiple(choices=CHOICES)
    django = forms.SelectMultiple(choices=CHOICES)
    assert parsed(ours.render("many", ["a", "x"])) == parsed(django.render("many", ["a", "x"]))
    assert "multiple" in ours.render("many", [])


def test_forms_use_the_fast_widgets_and_still_validate():
    from tuijin.web.forms import BootstrapMixin

    class F(BootstrapMixin, forms.Form):
        one = forms.ChoiceField(choices=CHOICES[1:2])
        many = forms.MultipleChoiceField(choices=[("p", "P"), ("q", "Q")])
        radio = forms.ChoiceField(choices=[("r", "R")], widget=forms.RadioSelect)

    f = F({"one": "a", "many": ["p", "q"], "radio": "r"})
    assert type(f.fields["one"].widget) is FastSelect
    assert type(f.fields["many"].widget) is FastSelectMultiple
    assert type(f.fields["radio"].widget) is forms.RadioSelect
    assert f.is_valid(), f.errors
    assert 'selected' in str(f["one"]) and 'class="form-select"' in str(f["one"])
    w = forms.Select()
    speed_up(w)
    assert type(w) is FastSelect
