from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def page(request):
    # No token here: sse.js fetches one from sse-token-url before it connects.
    return render(request, 'board/page.html', {'sse_url': settings.SSE_URL})
