from django.urls import path

from . import tasks, views

app_name = "mobile-v1"

urlpatterns = [
    path("login", views.UserLoginApi.as_view(), name="login"),
    path("logout", views.UserLogoutApi.as_view(), name="logout"),
    path("logout-all", views.UserLogoutAllApi.as_view(), name="logout-all"),
    path("me", views.ProfileDetailApi.as_view(), name="me"),
    path("me/grids", views.GridListApi.as_view(), name="me-grids"),
    path("tasks", tasks.TaskListApi.as_view(), name="tasks"),
    path("tasks/<str:ticket_no>", tasks.TaskDetailApi.as_view(), name="task"),
    *(path(f"tasks/<str:ticket_no>/{action}", view.as_view(), name=f"task-{action}")
      for action, view in tasks.ACTIONS.items()),
    path("reports", tasks.GridReportApi.as_view(), name="reports"),
]
