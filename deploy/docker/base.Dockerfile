# syntax=docker/dockerfile:1
# Shared base layers of every Casebook image: Python 3.11, a virtualenv with the
# pinned third-party dependencies from requirements.txt, and the shared libraries
# (casebook-events, casebook-platform). Each service Dockerfile starts its builder
# stage FROM this image (named `casebook-base`) and copies the finished venv into
# a clean python:3.11-slim runtime, so the heavy dependency layer is built once.
#
# Build context: the repository root.
#   docker build -f deploy/docker/base.Dockerfile -t casebook-base .
# docker compose builds it as the `base` service and hands it to the service
# builds through `additional_contexts`.
#
# requirements.txt pins third-party packages by name and version only (no URLs,
# no local paths): the local packages are installed below with --no-deps.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first: this layer changes only when requirements.txt does.
COPY requirements.txt ./requirements.txt
RUN pip install -r requirements.txt

COPY libs/ ./libs/
RUN pip install --no-deps ./libs/casebook-events ./libs/casebook-platform ./libs/casebook-web
