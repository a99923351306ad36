"""Settings of the sse-hub Django example: Django's own auth on SQLite, and the
three settings the sse-hub integration reads (SSE_*)."""
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent.parent

SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'example-only-never-use-this-key-in-production')
DEBUG = True
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = [
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.staticfiles',
    'board',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    # Deletes the stream token cookie on any answer to a logged-out request (logout included).
    'board.sse.TokenCookieMiddleware',
]

ROOT_URLCONF = 'example.urls'
TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
            ],
        },
    },
]

# start.js migrates a fresh database in a temporary folder on every start.
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ.get('DJANGO_DB', os.path.join(tempfile.gettempdir(), 'sse-hub-django-example.sqlite3')),
    }
}
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

LOGIN_URL = '/login/'
LOGIN_REDIRECT_URL = '/'
USE_TZ = True

STATIC_URL = '/static/'
# The page's jQuery comes from the repository's node_modules; a real site has its own copy.
STATICFILES_DIRS = [('vendor/jquery', str(REPO_ROOT / 'node_modules' / 'jquery' / 'dist'))]

# --- sse-hub ------------------------------------------------------------------
# The Redis sse-runserver listens to (sse-runserver --redis ...).
SSE_REDIS_URL = os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0')
# The stream's URL as browsers see it (sse-runserver's address and --path).
SSE_URL = os.environ.get('SSE_URL', 'http://127.0.0.1:8888/')
# Shared with sse-runserver --token-secret; at least 32 bytes.
SSE_TOKEN_SECRET = os.environ.get('SSE_TOKEN_SECRET', 'change-me-to-32-or-more-random-bytes!!')
# Seconds a stream token lives; sse.js fetches a new one before it reconnects.
SSE_TOKEN_TTL = int(os.environ.get('SSE_TOKEN_TTL', '300'))
