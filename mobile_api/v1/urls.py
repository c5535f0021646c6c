from django.urls import path

from mobile_api.v1 import task_views, views

app_name = "mobile-v1"

urlpatterns = [
    path("login", views.UserLoginApi.as_view(), name="login"),
    path("logout", views.UserLogoutApi.as_view(), name="logout"),
    path("logout-all", views.UserLogoutAllApi.as_view(), name="logout-all"),
    path("me", views.ProfileDetailApi.as_view(), name="me"),
    path("me/grids", views.GridListApi.as_view(), name="me-grids"),
    path("tasks", task_views.TaskListApi.as_view(), name="tasks"),
    path("tasks/<str:ticket_no>", task_views.TaskDetailApi.as_view(), name="task"),
    *(
        path(f"tasks/<str:ticket_no>/{action}", view.as_view(), name=f"task-{action}")
        for action, view in task_views.ACTIONS.items()
    ),
    path("reports", task_views.GridReportApi.as_view(), name="reports"),
]
