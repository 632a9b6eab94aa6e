"""factory-boy factories: each test states only the fields its behaviour depends on."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from boundary.fingerprint import text_fingerprint
from boundary.models import BoundaryCall, ModelVersion


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    direction = "decomposition"
    kind = "generative"
    backend = "transformers"
    base_model = "tiny-test-model"
    status = "ready"
    threshold = 0.5


class BoundaryCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BoundaryCall

    direction = "decomposition"
    input = factory.Sequence(lambda n: f"Person {n} prefers composable architectures.")
    output = factory.LazyFunction(
        lambda: [{"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}]
    )
    input_hash = factory.LazyAttribute(lambda o: text_fingerprint(str(o.input)))
    split = "train"
    served_by = "teacher"
    llm_model = "claude-haiku-4-5"
    latency_ms = 800.0
    client = factory.SubFactory(UserFactory)
