# The TaskRun controller image: `python -m controller`, non-root, read-only root filesystem.
#   docker build -t taskrun-controller:0.1.0 .
# tests/deploy/test_install.py replays this file's COPY and RUN steps outside Docker (no
# container engine on the build machines): keep to COPY, WORKDIR, ENV and `&&`-joined RUN
# commands of the forms used below, or teach that test the new form.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY taskrun ./taskrun
COPY controller ./controller
COPY devcluster ./devcluster
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
# Nothing may be written outside /tmp (an emptyDir in deploy/): no bytecode caches, and
# HOME points at /tmp for any library that insists on a home directory.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PATH=/opt/taskrun/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Dependencies first, pinned by the lock, so this layer is reused until the lock changes.
COPY requirements/runtime.lock /opt/taskrun-build/runtime.lock
RUN python -m venv /opt/taskrun \
    && /opt/taskrun/bin/pip install --no-cache-dir --disable-pip-version-check -r /opt/taskrun-build/runtime.lock
COPY --from=builder /wheels /opt/taskrun-build/wheels
RUN /opt/taskrun/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /opt/taskrun-build/wheels/*.whl \
    && /opt/taskrun/bin/python -m compileall -q /opt/taskrun \
    && rm -rf /opt/taskrun-build
# Numeric, so runAsNonRoot can verify it without an /etc/passwd lookup (distroless's nonroot).
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "controller"]
