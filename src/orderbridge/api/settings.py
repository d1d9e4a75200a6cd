"""Limits of the API, with CartRover's documented values as defaults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket_size: int = Field(default=100, ge=1, description="calls a key may burst (leaky bucket capacity)")
    leak_seconds: float = Field(default=0.6, gt=0, description="one call leaks out of the bucket this often")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="larger request bodies are refused")
    max_batch_orders: int = Field(default=500, ge=1, description="orders per create or batch call")
