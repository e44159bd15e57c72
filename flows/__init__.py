"""Thin Prefect flows over ``service/``: orchestration only, no domain logic."""
