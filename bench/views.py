"""The bare reference endpoint: the same rows as /api/opportunities page 1, without our stack.

No authentication, no visibility filter, no schema validation, no pagination
count: one query with the same joins and columns, serialised by JsonResponse.
Comparing it with our list endpoint measures the API overhead (auth, visibility,
ninja schemas, count) on the same server and data.
"""

from django.http import JsonResponse

from tuijin.pipeline.models import Opportunity

FIELDS = (
    "id", "name", "customer_id", "customer__name", "owner_id", "owner__username", "owner__display_name",
    "pipeline_id", "stage_id", "stage__code", "stage__name", "stage__name_en", "stage__order",
    "stage__probability", "stage__kind", "amount", "expected_close_date", "probability", "loss_reason",
    "loss_note", "last_progress_at", "stage_entered_at", "closed_at", "created_at", "updated_at", "version",
)


def bare_opportunities(request):
    try:
        size = min(max(int(request.GET.get("page_size", 20)), 1), 200)
    except ValueError:
        size = 20
    rows = list(Opportunity.objects.order_by("-updated_at", "-id").values(*FIELDS)[:size])
    return JsonResponse({"items": rows, "count": len(rows)})
