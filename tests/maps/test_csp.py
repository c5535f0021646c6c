"""The Content-Security-Policy in a real browser: every role's map page, the intake page and the
admin login load under the policy without a single violation, and still work (the map draws, the
live connection opens). A violation is caught twice: the page's securitypolicyviolation events
and Chromium's console report of what it refused.

    pytest -m browser tests/maps/test_csp.py
"""

import pytest

from gridgov.accounts.models import Role

from . import browser, test_browser
from .test_browser import LAYER_COUNTS, PAGES, REASON, login

# The map browser tests' fixtures: one Daphne, one Chromium, the same committed city.
server, chromium, city = test_browser.server, test_browser.chromium, test_browser.city

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(REASON is not None, reason=f"browser tests need Chromium and Playwright: {REASON}"),
]
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def open_page(context, base, path):
    page = context.new_page()
    page.add_init_script(LISTEN)
    # The site has no favicon (the map pages say so with a data: icon; the others 404).
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    refused = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and refused.append(msg.text))
    rec = browser.Recorder(page, base)
    response = page.goto(base + path, wait_until="networkidle")
    assert response.status == 200, (path, response.status)
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    return page, rec, refused


def assert_no_violation(page, rec, refused):
    assert page.evaluate("window.__cspViolations") == []
    assert refused == []
    assert rec.errors == [], rec.errors


@pytest.mark.parametrize("name,who,path,expected", PAGES, ids=[p[0] for p in PAGES])
def test_map_pages_run_under_the_policy(server, chromium, city, name, who, path, expected):
    login(chromium, server, city["users"][who])
    page, rec, refused = open_page(chromium, server, path)
    try:
        page.wait_for_function("() => window.gridgovMap && window.gridgovMap.ready", timeout=15000)
        counts = page.evaluate(LAYER_COUNTS)
        assert all(counts.get(role) == n for role, n in expected.items()), counts
        assert page.locator(".leaflet-container canvas").count() >= 1
        page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'on'", timeout=15000)
        policy = page.evaluate("fetch(location.href).then(r => r.headers.get('content-security-policy'))")
        assert (
            "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        # Popups and tooltips are HTML Leaflet writes into the page: open some.
        page.evaluate("""() => { const g = window.gridgovMap; let n = 0;
          for (const layer of Object.values(g.layers)) {
            if (!layer.eachLayer) continue;
            layer.eachLayer(l => { if (n < 3 && l.getPopup && l.getPopup()) { l.openPopup(); n++; } });
          } }""")
        page.wait_for_timeout(300)
        # The legend's colours are style attributes (style-src-attr): still applied.
        dots = page.evaluate(
            "[...document.querySelectorAll('.legend .dot')].map(d => getComputedStyle(d).backgroundColor)"
        )
        assert "rgba(0, 0, 0, 0)" not in dots, dots
        browser.screenshot(page, f"csp-{name}")
        assert_no_violation(page, rec, refused)
    finally:
        page.close()


def test_intake_page_runs_under_the_policy(server, chromium, city, make_user):
    login(chromium, server, make_user(Role.OPERATOR, username="csp-operator"))
    page, rec, refused = open_page(chromium, server, "/intake/")
    try:
        page.locator("#intake-map .leaflet-container, #intake-map.leaflet-container").first.wait_for(timeout=10000)
        browser.screenshot(page, "csp-intake")
        assert_no_violation(page, rec, refused)
    finally:
        page.close()


def test_admin_login_runs_under_the_policy(server, chromium, city):
    chromium.clear_cookies()
    page, rec, refused = open_page(chromium, server, "/admin/login/")
    try:
        assert page.locator("input[name=username]").count() == 1
        browser.screenshot(page, "csp-admin-login")
        assert_no_violation(page, rec, refused)
    finally:
        page.close()


def test_admin_boundary_editor_runs_under_the_policy(server, chromium, city, make_user):
    from django.urls import reverse

    from gridgov.areas.models import Grid

    login(chromium, server, make_user(Role.ADMIN, username="csp-admin", is_staff=True, is_superuser=True))
    grid = Grid.objects.current().order_by("code").first()
    page, rec, refused = open_page(chromium, server, reverse("admin:areas_grid_change", args=[grid.pk]))
    try:
        page.locator(".dj_map canvas").first.wait_for(timeout=10000)  # OpenLayers drew the map
        assert page.evaluate("typeof geodjango_geom") == "object"
        browser.screenshot(page, "csp-admin-grid")
        assert_no_violation(page, rec, refused)
    finally:
        page.close()
