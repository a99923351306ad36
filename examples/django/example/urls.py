from django.contrib.auth import views as auth_views
from django.urls import path

from board import sse, views

urlpatterns = [
    path('', views.page, name='page'),
    path('login/', auth_views.LoginView.as_view(), name='login'),
    path('logout/', auth_views.LogoutView.as_view(next_page='/login/'), name='logout'),
    path('sse/token', sse.token_view, name='sse-token'),
]
