from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from alliance_app.lib.db_router import replica_aliases, replica_state


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers: what a load balancer asks before sending traffic.

    Replicas are reported beside it but do not decide: a page whose replica is down reads from
    the primary.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        answer, status = {"status": "unavailable", "database": "error"}, 503
    else:
        answer, status = {"status": "ok", "database": "ok"}, 200
    if replica_aliases():
        answer["replicas"] = replica_state()
    return JsonResponse(answer, status=status)
