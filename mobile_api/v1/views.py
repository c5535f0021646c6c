"""The phone-facing API: log in for a knox token, log out, who am I, my grids. Thin views:
parse with a serializer, call a service, render with a serializer."""

import hashlib
import logging

from django.contrib.auth import authenticate
from django.contrib.gis.db.models.functions import AsGeoJSON
from django.core.cache import caches
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.auth import TokenAuthentication
from redis.exceptions import RedisError
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.accounts.access import scope_codes
from gridgov.accounts.client_ip import client_ip
from gridgov.api import GeoJsonPagination
from gridgov.areas.models import Grid
from mobile_api.v1 import serializers as s
from mobile_api.v1.services import token_login, token_logout, token_logout_all

logger = logging.getLogger(__name__)


class LoginThrottle(ScopedRateThrottle):
    """LOGIN_THROTTLE_RATE (10/min) attempts per client address and username, counted in Redis
    so that all Daphne processes share the count. Per address alone would lock out a street's
    whole team behind one carrier NAT at the morning log-in. Once over the limit every try gets 429,
    the right password too. The account-wide and per-address lockout (gridgov/accounts/lockout.py)
    is axes', reached through authenticate() below, shared with the web login."""

    @property
    def cache(self):
        return caches["throttle"]

    def get_cache_key(self, request, view):
        data = request.data
        username = str(data.get("username", "")).strip().lower()[:150] if isinstance(data, dict) else ""
        # Hashed: a username is client text (any characters, any length) and must not shape the key.
        digest = hashlib.sha256(username.encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{digest}"}

    def get_ident(self, request):
        # DRF's own reads X-Forwarded-For from anyone: a new header on each try was a new count.
        return client_ip(request) or ""

    def allow_request(self, request, view):
        # Fails open: with Redis refused or hung (REDIS_REQUEST_TIMEOUT) the try is not counted
        # here but still by axes, whose lockout lives in the database, so a guesser stays bounded
        # while the street's team can still log in.
        try:
            return super().allow_request(request, view)
        except (OSError, RedisError) as exc:
            logger.warning(
                "login throttle: Redis unreachable (%s: %s); this try is not counted", type(exc).__name__, exc
            )
            return True


class UserLoginApi(APIView):
    """POST {"username", "password"} → {"token", "expiry", "user"}. Send the token as
    `Authorization: Token <token>`, and to /ws/v1/events/ as subprotocol `token.<token>`."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="mobile_login",
        request=s.LoginInput,
        responses=doc.responses(s.LoginOutput, 400, 429),
        tags=["mobile-auth"],
    )
    def post(self, request):
        data = s.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        # With the request, axes counts this try and refuses a locked account or address; its
        # middleware then answers 429 (gridgov.accounts.lockout.lockout_response).
        user = authenticate(
            request._request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if user is None:  # wrong password, unknown user and inactive user look the same
            logger.warning("mobile login failed for %r from %s", data.validated_data["username"], client_ip(request))
            return Response(
                {"detail": "用户名或密码错误 / wrong username or password", "code": "invalid_credentials"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        instance, token = token_login(user=user, request=request._request)
        return Response(s.LoginOutput({"token": token, "expiry": instance.expiry, "user": user}).data)


class UserLogoutApi(APIView):
    """POST → 204; the token of this request stops working (and its WebSockets close)."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(
        operation_id="mobile_logout",
        request=None,
        tags=["mobile-auth"],
        responses=doc.responses(
            OpenApiResponse(None, description="the token of this request stops working"), 401, status=204
        ),
    )
    def post(self, request):
        token_logout(user=request.user, auth_token=request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserLogoutAllApi(APIView):
    """POST → 204; every token of this user stops working (a lost phone)."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(
        operation_id="mobile_logout_all",
        request=None,
        tags=["mobile-auth"],
        responses=doc.responses(
            OpenApiResponse(None, description="every token of this user stops working"), 401, status=204
        ),
    )
    def post(self, request):
        token_logout_all(user=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileDetailApi(APIView):
    """GET → username, display name, role, jurisdiction codes, department, realtime groups."""

    @extend_schema(operation_id="mobile_me", responses=doc.responses(s.ProfileOutput, 401), tags=["mobile-auth"])
    def get(self, request):
        return Response(s.ProfileOutput(request.user).data)


class GridPagination(GeoJsonPagination):
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 2000


class GridListApi(generics.ListAPIView):
    """GET → the caller's grids (current versions) as a GeoJSON FeatureCollection: a grid worker's
    own grids, a street office's street, city-wide roles every grid (paged)."""

    serializer_class = s.GridFeature
    pagination_class = GridPagination

    @extend_schema(
        operation_id="mobile_me_grids",
        tags=["mobile-auth"],
        responses=doc.responses(
            doc.paged_features(
                doc.obj(
                    {
                        "code": doc.STR,
                        "name": doc.STR,
                        "version": doc.INT,
                        "valid_from": doc.DATETIME,
                        "community_code": doc.STR,
                        "street_code": doc.STR,
                    }
                ),
                id_=False,
            ),
            401,
            404,
        ),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = scope_codes(Grid.objects.current(), self.request.user)
        return qs.annotate(geom_json=AsGeoJSON("geom", precision=7)).defer("geom").order_by("code")
