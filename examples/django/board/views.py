from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .sse import set_token_cookie


@login_required
def page(request):
    response = render(request, 'board/page.html', {'sse_url': settings.SSE_URL})
    return set_token_cookie(request, response)
