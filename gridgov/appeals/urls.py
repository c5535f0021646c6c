"""Appeals routes: `api` is mounted under /api/v1/, `pages` (namespace "appeals") under /intake/."""

from django.urls import path

from gridgov.appeals import api as api_views
from gridgov.appeals import views as page_views

api = [
    path("appeals", api_views.AppealListCreateApi.as_view(), name="appeals"),
    path("appeals/bulk", api_views.AppealBulkCreateApi.as_view(), name="appeals-bulk"),
    path("appeals/queue/location", api_views.AppealLocationQueueApi.as_view(), name="appeals-location-queue"),
    path("appeals/<str:ticket_no>", api_views.AppealDetailApi.as_view(), name="appeal"),
    *(
        path(f"appeals/<str:ticket_no>/{action}", view.as_view(), name=f"appeal-{action}")
        for action, view in api_views.ACTIONS.items()
    ),
]

pages = (
    [
        path("", page_views.intake, name="intake"),
        path("<str:ticket_no>/", page_views.intake_result, name="intake-result"),
        path("<str:ticket_no>/category", page_views.intake_categorise, name="intake-categorise"),
        path("<str:ticket_no>/merge", page_views.intake_merge, name="intake-merge"),
    ],
    "appeals",
)
