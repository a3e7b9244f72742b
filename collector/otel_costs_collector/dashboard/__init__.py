"""The web dashboard: pages, charts and sign-in."""
