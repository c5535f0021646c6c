"""Map pages (namespace "maps") under /maps/, their data under /maps/api/, vector tiles under
/maps/tiles/."""

from django.urls import path

from . import api, views

app_name = "maps"
urlpatterns = [
    path("", views.index, name="index"),
    path("street/", views.street, name="street"),
    path("department/", views.department, name="department"),
    path("leader/", views.leader, name="leader"),
    path("worker/", views.worker, name="worker"),
    path("hotline/", views.hotline, name="hotline"),
    path("api/areas", api.AreaCountsApi.as_view(), name="api-areas"),
    path("api/heat", api.HeatApi.as_view(), name="api-heat"),
    path("api/heat/weekly", api.HeatSeriesApi.as_view(), name="api-heat-weekly"),
    path("api/totals", api.TotalsApi.as_view(), name="api-totals"),
    path("api/appeals", api.OpenAppealsApi.as_view(), name="api-appeals"),
    path("api/hotspots", api.HotspotsApi.as_view(), name="api-hotspots"),
    path("api/suggestions", api.SuggestionsApi.as_view(), name="api-suggestions"),
    path("api/calls", api.CallsApi.as_view(), name="api-calls"),
    path("api/tasks", api.TasksApi.as_view(), name="api-tasks"),
    path("api/queue", api.QueueApi.as_view(), name="api-queue"),
    path("tiles/appeals/<int:z>/<int:x>/<int:y>.mvt", api.AppealTileApi.as_view(), name="tiles-appeals"),
    path("tiles/grids/<int:z>/<int:x>/<int:y>.mvt", api.GridTileApi.as_view(), name="tiles-grids"),
]
