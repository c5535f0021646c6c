"""Login lockout (django-axes) for every login: the web page of every role, the admin and the
phone API, since each calls authenticate() with its request.

An account is locked after LOGIN_LOCKOUT_FAILURES failed logins from anywhere, a client address
after LOGIN_LOCKOUT_CLIENT_FAILURES failed logins for any usernames: higher, because a street's
whole team may sit behind one carrier NAT. Both last LOGIN_LOCKOUT_MINUTES (0: until an
administrator unlocks, in the admin's "Access attempts" or with `manage.py axes_reset_username`).
The client address is gridgov.accounts.client_ip.client_ip's, never a header the client sets.
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.db.models import Sum
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked account or client before ModelBackend looks at the password.

    authenticate() without a request (a management command, the test client's login()) has no
    client to count; axes would raise, so it is passed on to ModelBackend instead. Every login
    that faces the network (LoginView, the admin, the phone API) passes its request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LockoutHandler(AxesDatabaseHandler):
    """axes' database handler (AccessAttempt, AccessLog, AccessFailureLog) with its own limit for
    the client address; AXES_LOCKOUT_PARAMETERS is ["username", "ip_address"] in that order."""

    # A login or logout by a service called without a request (token_logout from a command or a
    # test) has no client to log, and axes' own handler fails on it.
    def user_logged_in(self, sender, request, user, **kwargs):
        if request is not None:
            super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        if request is not None:
            super().user_logged_out(sender, request, user, **kwargs)

    def failure_counts(self, request, credentials=None):
        """(failures of this account, failures from this client address) within the cool-off."""
        by_account, by_client = (
            qs.aggregate(n=Sum("failures_since_start"))["n"] or 0 for qs in self.get_user_attempts(request, credentials)
        )
        return by_account, by_client

    def get_failures(self, request, credentials=None):
        by_account, by_client = self.failure_counts(request, credentials)
        if by_client >= settings.LOGIN_LOCKOUT_CLIENT_FAILURES:
            return max(by_account, settings.AXES_FAILURE_LIMIT)
        return by_account


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: HTTP 429 saying what is locked and for how long, as JSON for the
    API and as a page for the web login and the admin."""
    # AxesMiddleware's async path passes the credentials in original_response's place.
    credentials = credentials or getattr(request, "axes_credentials", None)
    AxesProxyHandler.update_request(request)
    username = get_client_username(request, credentials) or ""
    by_account, _ = LockoutHandler().failure_counts(request, credentials)
    cool_off = get_cool_off(request)  # None: until an administrator unlocks
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    if by_account >= settings.AXES_FAILURE_LIMIT:
        what = f"账号“{username}”登录失败次数过多，已被锁定"
    else:
        what = f"您所在的网络地址（{request.axes_ip_address}）登录失败次数过多，已被锁定"
    then = f"请在 {-(-seconds // 60)} 分钟后再试，或联系系统管理员解锁。" if seconds else "请联系系统管理员解锁。"
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": f"{what}，{then}", "code": "locked_out"}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"what": what, "then": then}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
