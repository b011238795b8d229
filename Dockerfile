# migrate-bot: the Slack bot, served by waitress (HTTP) or over Socket Mode when SLACK_APP_TOKEN is set;
# GET /healthz answers in both. Production dependencies only: the embedded PostgreSQL (the [demo] extra)
# stays out, so the client tools below are the only PostgreSQL in the image.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY storage storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
# pg_dump, pg_restore and psql from one source, PGDG's apt repository: pg_dump refuses a server newer
# than itself and reads every older one, and Debian's own repository has a single, older major per
# release. Build with --build-arg PG_MAJOR=<your newest target's major> (or point config `tools:` at
# others). git and ssh fetch the environments whose migrations come from a repository.
ARG PG_MAJOR=18
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && . /etc/os-release \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" git openssh-client \
 && apt-get purge -y curl gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --create-home --uid 10001 migratebot \
 && install -d -o migratebot -g migratebot /data
USER migratebot
# What the bot keeps by a relative path (an environment's backups: .migrate-bot/backups) lands on the
# volume with the store, not in the container's own layer.
WORKDIR /data
ENV DATABASE_URL=sqlite:////data/state.db \
    PORT=3000 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 3000
STOPSIGNAL SIGTERM
# tests/slack/test_container_health.py runs this command against `migrate-bot serve` in both modes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=2)" || exit 1
CMD ["migrate-bot", "serve"]
