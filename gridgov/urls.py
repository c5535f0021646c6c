from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from gridgov.appeals import urls as appeals_urls
from gridgov.areas import views as areas
from gridgov.health import healthz

api_v1: list[URLPattern | URLResolver] = [
    path("locate", areas.LocateApi.as_view(), name="locate"),
    path("locate/bulk", areas.LocateBulkApi.as_view(), name="locate-bulk"),
    path("areas/<str:level>/", areas.AreaGeoJsonApi.as_view(), name="areas"),
    path("", include(appeals_urls.api)),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/maps/", permanent=False), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/whistles/", include("gridgov.whistles.urls")),
    path("api/v1/", include(api_v1)),
    path("intake/", include(appeals_urls.pages)),
    path("api/mobile/v1/", include("mobile_api.v1.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("maps/", include("maps.urls")),
    # Uploaded files, each behind the access check of what it belongs to (gridgov/files.py).
    path("media/", include("gridgov.files")),
]
