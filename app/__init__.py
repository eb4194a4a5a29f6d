"""FastAPI + Jinja2 web app: the orchestrator and the only owner of user state."""
