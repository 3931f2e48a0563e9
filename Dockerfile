# segstream: one image for the collector, the worker and the query API.
# The command picks the process: `docker run segstream collector|worker|api`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEGSTREAM_RULES=/app/rules \
    SEGSTREAM_STATE_DIR=/tmp/segstream

WORKDIR /app

# Dependencies first, so editing code or rules does not re-install them.
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home segstream

# Default rules; docker-compose.yml mounts ./rules over them.
COPY rules ./rules

USER segstream
EXPOSE 8088 8089
ENTRYPOINT ["segstream"]
CMD ["--help"]
