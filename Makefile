# The two commands of the README. Both work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

.PHONY: venv demo test test-airflow test-real test-node realcluster-bin node-bin cluster lint bench bench-kpo bench-kpo-real bench-real generate clean

$(VENV)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv
	$(UV) pip install --python $(PY) -q -r requirements/dev.lock
	$(UV) pip install --python $(PY) -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# Airflow lives in venvs of its own: its provider pins an older kubernetes client, and the
# operator is tested on both supported major versions.
.venv-airflow%/.installed: requirements/airflow%.lock pyproject.toml
	$(PYTHON) -m venv .venv-airflow$*
	.venv-airflow$*/bin/pip install -q --upgrade pip uv
	.venv-airflow$*/bin/uv pip install --python .venv-airflow$*/bin/python -q -r requirements/airflow$*.lock
	.venv-airflow$*/bin/uv pip install --python .venv-airflow$*/bin/python -q --no-deps -e .
	touch $@

# The controller's dependencies only, as in the image (requirements/runtime.lock): the
# benchmarks run the controller from here so its memory is what a deployment sees.
.venv-runtime/.installed: requirements/runtime.lock pyproject.toml
	$(PYTHON) -m venv .venv-runtime
	.venv-runtime/bin/pip install -q --upgrade pip uv
	.venv-runtime/bin/uv pip install --python .venv-runtime/bin/python -q -r requirements/runtime.lock
	.venv-runtime/bin/uv pip install --python .venv-runtime/bin/python -q --no-deps -e .
	touch $@

demo: venv
	$(PY) tools/demo.py

# The real-control-plane suite runs wherever Go is (every machine of this project and CI);
# without Go, one line says it was skipped.
GO := $(shell command -v go 2>/dev/null)

test: venv lint test-airflow
	$(PY) -m pytest -q -p no:cacheprovider -m "not realcluster"
ifdef GO
	$(MAKE) test-real
	$(MAKE) test-node
else
	@echo "make test: go is not on PATH: skipped the real-control-plane suite (make test-real)"
endif

# etcd, kube-apiserver, kube-controller-manager and kube-scheduler from Go modules into
# realcluster/bin (docs/testing.md: about 25 min cold on 2 cores, seconds once Go's caches
# are warm).
realcluster-bin: venv
	$(PY) -m realcluster build

# The real control plane's own tests (tests/realcluster) and the suites that run on any
# cluster, with --cluster=real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# and the node agent started once for the session (docs/testing.md).
REAL_SUITES := tests/realcluster tests/integration tests/testcluster tests/devcluster/test_kubectl.py \
	tests/devcluster/test_kubelet_kubectl.py tests/devcluster/test_exec.py \
	tests/deploy/test_rbac_proof.py tests/chaos/test_chaos.py tests/chaos/test_fuzz_admission.py \
	tests/security tests/cli tests/gitops
test-real: realcluster-bin .venv-airflow3/.installed
	$(PY) -m pytest -q -p no:cacheprovider --cluster=real $(REAL_SUITES)
	.venv-airflow3/bin/python -m pytest -q -p no:cacheprovider --cluster=real tests/airflow/test_dags.py

# The real node from Go modules (docs/realnode.md): kubelet, containerd, runc (needs gcc and
# libseccomp-dev), the CNI plugins, pause, and the busybox and pause images; Go's caches
# make a rebuild quick.
node-bin: realcluster-bin
	@dpkg -s libseccomp-dev busybox-static >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq libseccomp-dev busybox-static >/dev/null)
	sh realcluster/node/build.sh

# TaskRuns in true containers: the real control plane plus the real node (root, cgroup v1;
# the tests skip with one line where the machine cannot run a node), then the Airflow DAG
# tests with the real node as the suite's node (--node=real).
test-node: node-bin .venv-airflow3/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m realnode
	.venv-airflow3/bin/python -m pytest -q -p no:cacheprovider --cluster=real --node=real tests/airflow/test_dags.py

# A control plane for use by hand until Ctrl-C: prints `export KUBECONFIG=...`.
cluster: realcluster-bin
	$(PY) -m realcluster up --kubeconfig $(CURDIR)/.realcluster.kubeconfig

# TaskRunOperator on Airflow 3.3, 2.11 and 2.10, against devcluster and the real
# controller. 2.10's newest provider is 10.10: the tests that use KPO 10.25 as the oracle
# skip there (tests/airflow/conftest.py).
test-airflow: .venv-airflow3/.installed .venv-airflow2/.installed .venv-airflow210/.installed
	.venv-airflow3/bin/python -m pytest -q -p no:cacheprovider tests/airflow
	.venv-airflow2/bin/python -m pytest -q -p no:cacheprovider tests/airflow
	.venv-airflow210/bin/python -m pytest -q -p no:cacheprovider tests/airflow

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Regenerate everything derived from the models (tests fail when these are stale).
generate: venv
	$(PY) tools/gen_k8s_models.py
	$(PY) -m taskrun.api.crd > crds/taskrun.yaml
	$(PY) tools/gen_api_docs.py

# The figures of docs/benchmarks.md: the controller on devcluster, then KPO side by side.
bench: venv .venv-runtime/.installed bench-kpo
	$(UV) pip install --python $(PY) -q matplotlib
	BENCH_CONTROLLER_PYTHON=.venv-runtime/bin/python $(PY) -m bench

# The TaskRun controller and Kubernetes' Job controller side by side on the real control
# plane (docs/benchmarks.md's first section); BENCH_REAL_ARGS=--quick for a smoke run.
bench-real: venv .venv-runtime/.installed realcluster-bin
	$(UV) pip install --python $(PY) -q matplotlib
	BENCH_CONTROLLER_PYTHON=.venv-runtime/bin/python $(PY) -m bench.real $(BENCH_REAL_ARGS)

bench-kpo: .venv-airflow3/.installed
	.venv-airflow3/bin/python -m bench.kpo --seconds 60

# KPO and TaskRunOperator side by side on the real control plane (about 17 min: a 60 s and
# a 10-minute task, the four modes at once); requests from kube-apiserver's audit log.
bench-kpo-real: realcluster-bin .venv-airflow3/.installed
	.venv-airflow3/bin/python -m bench.kpo --cluster real --seconds 60,600 --update-docs

clean:
	rm -rf $(VENV) .venv-runtime .venv-airflow3 .venv-airflow2 .venv-airflow210 .mypy_cache .ruff_cache .pytest_cache
	rm -rf realcluster/bin .realcluster.kubeconfig
