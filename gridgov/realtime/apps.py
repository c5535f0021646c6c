from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "gridgov.realtime"
    verbose_name = "实时推送"

    def ready(self) -> None:
        from gridgov.accounts.services import user_sessions_revoked

        from .broadcast import session_revoke

        # An admin revoked all of a user's logins: close every socket of theirs (after commit).
        user_sessions_revoked.connect(
            lambda sender, user, **kw: session_revoke(user.pk, None), weak=False, dispatch_uid="realtime-revoke"
        )
