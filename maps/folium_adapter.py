"""The one place that reaches into folium/branca internals: rendered output stays text.

Why: branca's `MacroElement.render` (and folium's `Popup.render`) render an element's macro
template with its data, then wrap the *result* in `Element(result)`, which compiles it as a
new Jinja2 template and renders it a second time. Any data in the first output (a citizen's
words in a whistle call's problem, an area or category name from an import, a tooltip) is
thereby run as a template: `{{7*7}}` printed 49, `{{lipsum.__globals__.os...}}` reached
Python's `os`, and a stray `{{` or `{% debug %}` made the page answer 500.

The fix at the root: the second step never happens. Data reaches the page only as values of
folium's own (trusted, constant) templates, and what those render is kept as `Rendered` text,
which is never compiled. `install()` swaps in the two render methods below, mirrors of the
library's own with `Rendered` where the library wraps output in `Element`;
tests/maps/test_template_injection.py fails loudly if the library's methods change shape (so
an upgrade re-checks this file) and puts template syntax into every string the maps draw.
"""

import inspect

import branca
import folium
from branca.element import Element, Figure, MacroElement
from folium.map import Popup

# The versions whose render methods the mirrors below copy. An upgrade must re-read
# branca.element.MacroElement.render and folium.map.Popup.render, then update these.
BRANCA_VERSION = "0.8.2"
FOLIUM_VERSION = "0.20.0"


class Rendered(Element):
    """Already rendered HTML/JS, inserted as it is: never compiled or rendered as a template."""

    def __init__(self, text):
        super().__init__()
        self._name = "Rendered"
        self.text = str(text)

    def render(self, **kwargs):
        return self.text


def _macro_render(self, **kwargs):
    """branca.element.MacroElement.render, keeping the macros' output as text."""
    figure = self.get_root()
    assert isinstance(figure, Figure), "You cannot render this Element if it is not in a Figure."
    macros = self._template.module.__dict__
    for part in ("header", "html", "script"):
        macro = macros.get(part)
        if macro is not None:
            getattr(figure, part).add_child(Rendered(macro(self, kwargs)), name=self.get_name())
    for element in self._children.values():
        element.render(**kwargs)


def _popup_render(self, **kwargs):
    """folium.map.Popup.render, keeping the popup's script as text."""
    for child in self._children.values():
        child.render(**kwargs)
    figure = self.get_root()
    assert isinstance(figure, Figure), "You cannot render this Element if it is not in a Figure."
    figure.script.add_child(Rendered(self._template.render(this=self, kwargs=kwargs)), name=self.get_name())


_ORIGINALS = {}


def install():
    """Put the mirrors in place (idempotent). Refuses other library versions than those mirrored."""
    if (branca.__version__, folium.__version__) != (BRANCA_VERSION, FOLIUM_VERSION):
        raise RuntimeError(
            f"maps.folium_adapter mirrors branca {BRANCA_VERSION} / folium {FOLIUM_VERSION}, found "
            f"{branca.__version__} / {folium.__version__}: re-read their render methods and update it"
        )
    for cls, name, mirror in ((MacroElement, "render", _macro_render), (Popup, "render", _popup_render)):
        current = cls.__dict__[name]
        if current is not mirror:
            _ORIGINALS[(cls, name)] = current
            setattr(cls, name, mirror)


def original_source(cls, name="render"):
    """Source of the library method a mirror replaced (for the test that watches upgrades)."""
    return inspect.getsource(_ORIGINALS.get((cls, name), cls.__dict__[name]))


def compiled_from_data(figure):
    """Children of the figure's header/html/script that hold a template compiled from text at
    render time (what the mirrors exist to prevent), by name. Constant templates written in our
    own or folium's code (a `<meta>` tag, a style rule) have no `{{`, `{%` or `{#` in them once
    rendered, so any such marker in a compiled text means data went through compilation."""
    found = []
    for part in (figure.header, figure.html, figure.script):
        for name, child in part._children.items():
            source = getattr(child, "_template_str", None)
            if source and any(marker in source for marker in ("{{", "{%", "{#")):
                found.append(name)
    return found
