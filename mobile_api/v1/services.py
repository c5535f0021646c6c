"""Token sessions of the phone app: every one is a state change with an audit record."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from knox.models import get_token_model

from gridgov.accounts.client_ip import client_ip
from gridgov.audit.services import audit_record
from gridgov.realtime import broadcast


@transaction.atomic
def token_login(*, user, request=None):
    """A new knox token valid for MOBILE_TOKEN_TTL_HOURS. Returns (AuthToken, token string);
    the string is shown once and only its digest is stored."""
    ttl = timedelta(hours=settings.MOBILE_TOKEN_TTL_HOURS)
    instance, token = get_token_model().objects.create(user=user, expiry=ttl)
    audit_record(
        actor=user,
        action="auth.login",
        object_type="knox.authtoken",
        object_id=instance.token_key,
        data={"client": "mobile", "expiry": instance.expiry, "ip": _ip(request)},
    )
    user_logged_in.send(sender=user.__class__, request=request, user=user)  # updates last_login
    return instance, token


@transaction.atomic
def token_logout(*, user, auth_token, request=None):
    key = auth_token.token_key
    auth_token.delete()
    audit_record(
        actor=user,
        action="auth.logout",
        object_type="knox.authtoken",
        object_id=key,
        data={"client": "mobile", "ip": _ip(request)},
    )
    broadcast.session_revoke(user.pk, [key])
    user_logged_out.send(sender=user.__class__, request=request, user=user)


@transaction.atomic
def token_logout_all(*, user, request=None):
    keys = list(user.auth_token_set.values_list("token_key", flat=True))
    user.auth_token_set.all().delete()
    audit_record(
        actor=user,
        action="auth.logout_all",
        obj=user,
        data={"client": "mobile", "revoked": len(keys), "ip": _ip(request)},
    )
    broadcast.session_revoke(user.pk, None)
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    return len(keys)


def _ip(request):
    return (client_ip(request) or "") if request is not None else ""
