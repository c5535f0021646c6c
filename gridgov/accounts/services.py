"""What an admin does to a user's logins: revoke them all at once (a lost phone)."""

from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from knox.models import AuthToken

from gridgov.audit.services import audit_record

from .models import User

# Sent inside the revoking transaction with user= : the realtime layer (a floor above, which
# this package may not import) closes the user's WebSockets on it.
user_sessions_revoked = Signal()


@transaction.atomic
def user_sessions_revoke(*, user: User, actor: Any) -> dict[str, int]:
    """Delete every web session and every knox token of the user, and record it with the admin
    as actor. Returns the counts."""
    # Sessions are signed blobs without a user column: decode the live ones. An admin action
    # on a few users; the table holds only unexpired sessions after clearsessions.
    session_keys = [
        s.session_key
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(s.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    Session.objects.filter(session_key__in=session_keys).delete()
    tokens, _ = AuthToken.objects.filter(user=user).delete()
    counts = {"sessions": len(session_keys), "tokens": tokens}
    audit_record(actor=actor, action="auth.revoke_all", obj=user, data=counts)
    user_sessions_revoked.send(sender=User, user=user)
    return counts
