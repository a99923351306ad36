import json

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.html import escape

from .sse import channel_for, send_event


class Message(models.Model):
    """A message for one user, or for everyone when owner is None."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)


@receiver(post_save, sender=Message)
def publish_message(sender, instance, created, **kwargs):
    if not created:
        return
    channel = channel_for(instance.owner) if instance.owner else 'all'
    data = json.dumps({'type': 'message', 'text': instance.text, 'html': '<li>%s</li>' % escape(instance.text)})
    # After the commit: a page never hears of a row that a rollback took back.
    transaction.on_commit(lambda: send_event('message', data, channel))
