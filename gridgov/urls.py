from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from gridgov.areas import views as areas
from gridgov.health import healthz

api_v1 = [
    path("locate", areas.LocateApi.as_view(), name="locate"),
    path("locate/bulk", areas.LocateBulkApi.as_view(), name="locate-bulk"),
    path("areas/<str:level>/", areas.AreaGeoJsonApi.as_view(), name="areas"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]
