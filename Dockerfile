# leadrouter as a container: `leadrouter serve` as a user without privileges, on port 3000.
#
#   docker build -t leadrouter .
#   docker run --env-file .env -v "$PWD/routing.yml:/config/routing.yml:ro" \
#              -v leadrouter-data:/data -p 3000:3000 leadrouter
#
# compose.yaml runs two of these on PostgreSQL behind a TLS proxy. Settings come from the
# environment (see .env.example); the policy file is mounted at /config/routing.yml.

# Python 3.11, the one the suite runs on and requirements.txt is locked for.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The locked releases, each checked against its hash, then leadrouter itself without resolving again.
COPY requirements.txt requirements-native.txt ./
RUN python -m venv /opt/leadrouter \
    && /opt/leadrouter/bin/pip install --require-hashes -r requirements.txt
# What compiles the routing core's hot modules (mypyc and a C compiler), in this stage only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/native \
    && /opt/native/bin/pip install --require-hashes -r requirements-native.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY routing ./routing
COPY storage ./storage
COPY examples ./examples
COPY ops/native.py ./ops/native.py
# The extensions go into routing/compiled, which the wheel carries (pyproject.toml, `artifacts`).
RUN /opt/native/bin/python ops/native.py build
RUN /opt/leadrouter/bin/pip install --no-deps .
# The installed package runs them (from /, not the sources here): the build fails otherwise.
RUN cd / && /opt/leadrouter/bin/python -W error -c \
    "import routing, sys; sys.exit(not routing.compiled_modules())"

FROM python:3.11-slim
ENV PATH=/opt/leadrouter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/leadrouter.db \
    LEADROUTER_RULES=/config/routing.yml \
    HOST=0.0.0.0 \
    PORT=3000
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin leadrouter \
    && mkdir -p /data /config \
    && chown leadrouter:leadrouter /data
COPY --from=build /opt/leadrouter /opt/leadrouter
USER leadrouter
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# The image has no curl: Python asks /healthz, which answers 200 while the database does.
# Asks the address serve listens on (HOST), or loopback when it listens on every interface.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('HOST', ''); h = '127.0.0.1' if h in ('', '0.0.0.0', '::') else h; h = '[%s]' % h if ':' in h else h; urllib.request.urlopen('http://%s:%s/healthz' % (h, os.environ.get('PORT', '3000')), timeout=4)"]
ENTRYPOINT ["leadrouter"]
CMD ["serve"]
