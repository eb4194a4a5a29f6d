# modescope web app. Build: docker build -t modescope .
# Run:   docker run -p 8000:8000 -v "$PWD/modescope-workspace:/data/workspace" modescope
# Ingest into the mounted workspace first (on the host, or `docker run ... modescope ingest`).

# -- builder: the wheel. modescope/ holds a link per room; setuptools copies the files they
# name (templates and static files included), so every linked folder must be here too.
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY modescope ./modescope
COPY core ./core
COPY cli ./cli
COPY app ./app
COPY indexer ./indexer
COPY trainer ./trainer
COPY templates ./templates
COPY static ./static
# a room added under modescope/ but not copied above would leave a dangling link and a wheel
# without it: stop here instead
RUN for link in modescope/*; do \
        [ -e "$link" ] || { echo "$link points to a folder this Dockerfile does not copy"; exit 1; }; \
    done \
    && pip wheel --no-deps -w /wheels .

# -- runtime: the wheel and its dependencies, no source tree
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODESCOPE_WORKSPACE=/data/workspace

RUN useradd --create-home --uid 10001 modescope \
    && mkdir -p /data/workspace && chown -R modescope:modescope /data

COPY --from=builder /wheels /tmp/wheels
RUN pip install /tmp/wheels/modescope-*.whl && rm -rf /tmp/wheels

USER modescope
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["modescope", "serve", "--host", "0.0.0.0", "--port", "8000"]
