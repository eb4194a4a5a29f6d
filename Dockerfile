# modescope web app. Build: docker build -t modescope .
# Run:   docker run -p 8000:8000 -v "$PWD/modescope-workspace:/data/workspace" modescope
# Ingest into the mounted workspace first (on the host, or `docker run ... modescope ingest`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODESCOPE_WORKSPACE=/data/workspace

RUN useradd --create-home --uid 10001 modescope \
    && mkdir -p /data/workspace && chown -R modescope:modescope /data

WORKDIR /opt/modescope
COPY pyproject.toml README.md ./
COPY modescope ./modescope
COPY app ./app
COPY indexer ./indexer
COPY trainer ./trainer
COPY templates ./templates
COPY static ./static
# editable: the app finds templates/ and static/ beside its package
RUN pip install -e .

USER modescope
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["modescope", "serve", "--host", "0.0.0.0", "--port", "8000"]
