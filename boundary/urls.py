from django.urls import path

from boundary import api

app_name = "api"

urlpatterns = [
    path("decompose", api.DecomposeView.as_view(), name="decompose"),
    path("recompose", api.RecomposeView.as_view(), name="recompose"),
    path("calls", api.CallListView.as_view(), name="calls"),
    path("calls/<int:pk>", api.CallDetailView.as_view(), name="call"),
    path("calls/<int:pk>/feedback", api.FeedbackView.as_view(), name="feedback"),
    path("models", api.ModelVersionListView.as_view(), name="models"),
]
