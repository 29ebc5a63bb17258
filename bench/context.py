"""What a scenario gets: the dataset's users (by role), logged-in page clients, API clients, sample ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.test import Client

from .datasets import Scale


@dataclass
class Context:
    scale: Scale
    meta: dict
    users: dict = field(default_factory=dict)
    _pages: dict = field(default_factory=dict)
    _apis: dict = field(default_factory=dict)

    @classmethod
    def build(cls, scale: Scale, meta: dict) -> Context:
        from tuijin.org.models import User

        ctx = cls(scale=scale, meta=meta)
        names = meta["users"]
        found = {u.username: u for u in User.objects.select_related("org_unit").filter(username__in=names.values())}
        ctx.users = {role: found[username] for role, username in names.items()}
        return ctx

    def user(self, role: str):
        return self.users[role]

    def page(self, role: str) -> Client:
        """A Client with a session for the role's user, as a browser would have."""
        if role not in self._pages:
            client = Client()
            client.force_login(self.users[role])
            self._pages[role] = client
        return self._pages[role]

    def api(self, role: str) -> Client:
        """A Client sending a real bearer token, obtained through the token endpoint."""
        if role not in self._apis:
            client = Client()
            resp = client.post("/api/auth/token", {"username": self.users[role].username, "password": "bench-password"},
                               content_type="application/json")
            if resp.status_code != 200:
                raise RuntimeError(f"cannot get a token for {role}: {resp.status_code} {resp.content[:200]!r}")
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {resp.json()['token']}"
            self._apis[role] = client
        return self._apis[role]

    def token(self, role: str) -> str:
        return self.api(role).defaults["HTTP_AUTHORIZATION"].split(" ", 1)[1]

    # -- sample records

    def rep_in_region(self):
        """A rep the manager (region manager) sees: the dataset's first rep."""
        return self.users["rep"]

    def stage(self, code: str):
        from tuijin.pipeline.models import Stage

        return Stage.objects.get(pipeline__code="medical_devices", code=code)

    def rep_customer(self):
        """The rep's customer with the most opportunities (a busy detail page)."""
        from django.db.models import Count

        from tuijin.customers.models import Customer

        return (Customer.objects.filter(owner=self.users["rep"]).annotate(n=Count("opportunities"))
                .order_by("-n", "id").first())
