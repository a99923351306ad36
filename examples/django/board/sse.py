"""sse-hub from Django: django_sse's send_event(), unchanged, and the signed
token that tells sse-runserver (--channels token) which channels a logged-in
user may listen on: their own and 'all'."""
import json
import re
import time

import jwt
import redis
from django.conf import settings
from django.http import HttpResponse, JsonResponse

COOKIE = 'sse_token'  # sse-runserver's default --token-cookie
_CHANNEL = re.compile(r'[A-Za-z0-9_.:@-]{1,128}')
_redis = None


def send_event(event_name, data, channel):
    """django_sse's send_event: PUBLISH json.dumps([event, data]) on the channel."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.SSE_REDIS_URL)
    _redis.publish(channel, json.dumps([event_name, data]))


def channel_for(user):
    """The user's own channel: the username, or user-<pk> when it has characters a channel cannot (+)."""
    name = user.get_username()
    return name if _CHANNEL.fullmatch(name) else 'user-%s' % user.pk


def token_for(user):
    now = int(time.time())
    claims = {
        'sub': user.get_username(),
        'channels': [channel_for(user), 'all'],
        'iat': now,
        'exp': now + settings.SSE_TOKEN_TTL,
    }
    return jwt.encode(claims, settings.SSE_TOKEN_SECRET, algorithm='HS256')


def set_token_cookie(request, response):
    response.set_cookie(
        COOKIE,
        token_for(request.user),
        max_age=settings.SSE_TOKEN_TTL,
        httponly=True,
        samesite='Lax',
        secure=request.is_secure(),
    )
    return response


def token_view(request):
    """<body sse-token-url>: a fresh token cookie for the logged-in user; 403 for anyone else."""
    if not request.user.is_authenticated:
        return JsonResponse({'error': 'log in first'}, status=403)
    return set_token_cookie(request, HttpResponse(status=204))


class TokenCookieMiddleware:
    """Deletes the token cookie on every answer to a logged-out request, so logging out ends
    the stream at the token's expiry (the open stream runs until then)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if COOKIE in request.COOKIES and not request.user.is_authenticated:
            response.delete_cookie(COOKIE, samesite='Lax')
        return response
