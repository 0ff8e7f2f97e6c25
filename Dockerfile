# syntax=docker/dockerfile:1
# One image for every role: `api`, `worker`, `beat`, `migrate` are its commands.
#   docker build -t xgenerator .
#   docker run --rm xgenerator --help
ARG PYTHON_VERSION=3.11

# --- builder: wheels for the service and all it depends on, built with the full toolchain ---
FROM python:${PYTHON_VERSION} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

# --- runtime: slim, no compilers, no source tree, not root ---------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XGEN_DATA_DIR=/var/lib/xgenerator
# libgomp1: XGBoost's OpenMP runtime, which the slim image lacks
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 xgen \
    && useradd --system --uid 10001 --gid xgen --create-home --home-dir /home/xgen xgen \
    && mkdir -p /var/lib/xgenerator \
    && chown xgen:xgen /var/lib/xgenerator
# installed offline from the builder's wheels, which never become a layer of this image
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels xgenerator
USER xgen
WORKDIR /home/xgen
EXPOSE 8000
ENTRYPOINT ["xgenerator"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
