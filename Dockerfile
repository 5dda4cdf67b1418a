# JEBOL SIPERA server image, in three stages:
#   assets   Node installs the pinned browser libraries (web/package-lock.json) and the
#            Makefile's own `make assets` rule copies them into server/static/vendor/;
#   build    wheels of the server (with those files inside) and of its dependencies;
#   runtime  a slim Python with the wheels, run as an unprivileged user. No Node at run time.

FROM node:20-slim AS assets
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY web/package.json web/package-lock.json ./web/
RUN make assets

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY forms ./forms
COPY storage ./storage
COPY server ./server
COPY --from=assets /src/server/static/vendor ./server/static/vendor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 jebol
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels jebol-sipera && rm -rf /wheels
USER jebol
WORKDIR /home/jebol
# Made here, owned by jebol: a new named volume mounted on it takes this owner.
RUN mkdir -p /home/jebol/data
ENV JEBOL_HOST=0.0.0.0 JEBOL_PORT=8000 JEBOL_DATA_DIR=/home/jebol/data JEBOL_LOG_FORMAT=json
EXPOSE 8000
# Ready = the database and the blob store answer (server/health.py; each check is bounded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
CMD ["jebol", "serve"]
