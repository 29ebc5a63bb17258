"""Simplified-Chinese number formats: amounts grouped by thousands with commas (1,234,567).

Django's zh_Hans locale has no thousands separator and groups by 4 (万), so `intcomma` printed
¥1234567; Chinese business documents, banks and finance software write amounts as ¥1,234,567.
Everything else (dates, first day of week) still comes from Django's zh_Hans module.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
