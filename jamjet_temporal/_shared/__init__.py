"""Plumbing shared by every capability: lazy exports, store URLs, the YAML error explainer,
principal ids, compiled pydantic models. Each module says which side it may run on."""
