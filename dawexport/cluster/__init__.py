"""Builds on a Ray cluster: `dawexport build *.yaml --cluster ray` (optional extra: `pip install "dawexport[ray]"`).

    with ray_session("ray", cache=Path("/shared/dawexport-cache")) as stages:
        build("instruments/cat_flute.yaml", stages=stages)

`session` connects to (or starts) Ray; `stages` turns the pipeline's heavy stages into Ray tasks; `tasks`
holds what runs on the workers. Nothing here imports Ray until a session starts.
"""
from .session import ClusterError, ray_available, ray_session, resolve_address

__all__ = ["ClusterError", "ray_available", "ray_session", "resolve_address"]
