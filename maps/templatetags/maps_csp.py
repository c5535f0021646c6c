"""The Content-Security-Policy nonce on the inline blocks folium writes into a map's header."""

import re

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

_OPENING = re.compile(r"<(script|style)\b", re.IGNORECASE)


@register.filter
def nonced(header, nonce):
    """folium's header (its own <style> and <script> blocks, and no request data: that goes into
    the map's script) with this request's nonce on each block, so the policy can refuse the rest."""
    return mark_safe(_OPENING.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', str(header)))
