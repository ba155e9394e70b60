# The chat server as a container image (docs/deploy.md, "Container").
#   docker build -t chat-web .
#   docker run -d -p 3000:3000 -v chat-data:/data -e JWT_SECRET=... chat-web
# The journal, the generated secret and nothing else live in the /data volume.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY chat_core ./chat_core
COPY chat_web ./chat_web
COPY chat_cli ./chat_cli
COPY migrations ./migrations
RUN python -m venv /opt/chat \
    && /opt/chat/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/chat/bin/pip install --no-cache-dir .

FROM python:3.11-slim
COPY --from=build /opt/chat /opt/chat
# For `alembic upgrade head` run by hand in /app (serve migrates at start-up anyway).
COPY alembic.ini /app/alembic.ini
COPY migrations /app/migrations
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin chat \
    && mkdir -p /data && chown chat /data && chmod 0700 /data
ENV PATH=/opt/chat/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    CHAT_DATA_DIR=/data \
    CHAT__LOGGING__FORMAT=json \
    CHAT__ADMIN__SEED_DEMO_USERS=false
USER chat
WORKDIR /app
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:3000/health', timeout=2)"]
# exec form: chat-web is PID 1 and gets SIGTERM itself (a graceful stop exits 0).
CMD ["chat-web", "serve"]
