"""Mounted at /api/v1/whistles/ (gridgov/urls.py)."""

from django.urls import path

from . import api

app_name = "whistles"

urlpatterns = [
    path("hotspots", api.HotspotListApi.as_view(), name="hotspots"),
    path("hotspots/<int:pk>", api.HotspotDetailApi.as_view(), name="hotspot"),
    path("hotspots/<int:pk>/acknowledge", api.HotspotAcknowledgeApi.as_view(), name="hotspot-acknowledge"),
    path("hotspots/<int:pk>/dismiss", api.HotspotDismissApi.as_view(), name="hotspot-dismiss"),
    path("suggestions", api.SuggestionListApi.as_view(), name="suggestions"),
    path("suggestions/<int:pk>", api.SuggestionDetailApi.as_view(), name="suggestion"),
    path("suggestions/<int:pk>/proposal", api.SuggestionProposalApi.as_view(), name="suggestion-proposal"),
    path("suggestions/<int:pk>/confirm", api.SuggestionConfirmApi.as_view(), name="suggestion-confirm"),
    path("suggestions/<int:pk>/dismiss", api.SuggestionDismissApi.as_view(), name="suggestion-dismiss"),
    path("calls", api.CallListCreateApi.as_view(), name="calls"),
    path("calls/proposal", api.CallProposalApi.as_view(), name="call-proposal"),
    path("calls/<int:pk>", api.CallDetailApi.as_view(), name="call"),
    path("calls/<int:pk>/close", api.CallCloseApi.as_view(), name="call-close"),
    path("calls/<int:pk>/cancel", api.CallCancelApi.as_view(), name="call-cancel"),
    path("calls/<int:pk>/evaluation", api.CallEvaluationApi.as_view(), name="call-evaluation"),
    path("musters/<int:pk>/acknowledge", api.MusterAcknowledgeApi.as_view(), name="muster-acknowledge"),
    path("musters/<int:pk>/check-in", api.MusterCheckInApi.as_view(), name="muster-check-in"),
    path("musters/<int:pk>/report", api.MusterReportApi.as_view(), name="muster-report"),
    path("musters/<int:pk>/evaluation", api.MusterEvaluationApi.as_view(), name="muster-evaluation"),
    path("monthly-topic", api.MonthlyTopicApi.as_view(), name="monthly-topic"),
]
