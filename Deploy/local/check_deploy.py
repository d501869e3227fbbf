#!/usr/bin/env python3
"""Static checks of what ops deploy (Deploy/kubernetes, Deploy/docker, Deploy/systemd,
Deploy/grafana), run by Deploy/local/check-deploy.sh in `make test`.

- Kubernetes objects of built-in kinds: kubernetes-validate --strict (the API's own schemas).
- Objects of the operators' kinds (KEDA, RabbitMQ Cluster Operator, CloudNativePG): the fields
  these manifests use, against the operators' documented API (their CRDs are not on this
  machine), unknown fields refused.
- Agreement: every worker executable has a Deployment, a KEDA ScaledObject on its queue, and a
  compose service; every object the kustomization lists exists; Secrets and ConfigMaps named by
  the workloads are the documented ones.
- The Grafana dashboard loads and every panel has a Prometheus query (which metrics those name
  is checked against live processes by DeployArtifactsTests).

Exits 1 naming every problem.
"""
import glob
import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def strict(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def loose(properties=None, required=()):
    return {"type": "object", "properties": properties or {}, "required": list(required)}


METADATA = loose({"name": {"type": "string"}, "namespace": {"type": "string"}}, ["name", "namespace"])
RESOURCES = loose({"requests": {"type": "object"}, "limits": {"type": "object"}})

# The operators' documented fields that these manifests use.
OPERATOR_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): strict({
        "apiVersion": {}, "kind": {}, "metadata": METADATA,
        "spec": strict({
            "scaleTargetRef": strict({"name": {"type": "string"}, "kind": {"type": "string"}, "apiVersion": {"type": "string"}}, ["name"]),
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "triggers": {"type": "array", "minItems": 1, "items": strict({
                "type": {"const": "rabbitmq"},
                "metadata": strict({
                    "protocol": {"enum": ["amqp", "http", "auto"]},
                    "queueName": {"type": "string"},
                    "mode": {"enum": ["QueueLength", "MessageRate"]},
                    "value": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
                }, ["queueName", "mode", "value"]),
                "authenticationRef": strict({"name": {"type": "string"}}, ["name"]),
            }, ["type", "metadata"])},
        }, ["scaleTargetRef", "triggers"]),
    }, ["apiVersion", "kind", "metadata", "spec"]),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): strict({
        "apiVersion": {}, "kind": {}, "metadata": METADATA,
        "spec": strict({"secretTargetRef": {"type": "array", "minItems": 1, "items": strict({
            "parameter": {"enum": ["host", "username", "password"]}, "name": {"type": "string"}, "key": {"type": "string"},
        }, ["parameter", "name", "key"])}}, ["secretTargetRef"]),
    }, ["apiVersion", "kind", "metadata", "spec"]),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): strict({
        "apiVersion": {}, "kind": {}, "metadata": METADATA,
        "spec": strict({
            "replicas": {"type": "integer", "enum": [1, 3, 5, 7]},
            "image": {"type": "string"},
            "resources": RESOURCES,
            "persistence": strict({"storage": {"type": "string"}, "storageClassName": {"type": "string"}}),
            "rabbitmq": strict({"additionalPlugins": {"type": "array", "items": {"type": "string"}},
                                "additionalConfig": {"type": "string"}, "advancedConfig": {"type": "string"}}),
        }),
    }, ["apiVersion", "kind", "metadata"]),
    ("postgresql.cnpg.io/v1", "Cluster"): strict({
        "apiVersion": {}, "kind": {}, "metadata": METADATA,
        "spec": strict({
            "instances": {"type": "integer", "minimum": 1},
            "imageName": {"type": "string"},
            "primaryUpdateStrategy": {"enum": ["supervised", "unsupervised"]},
            "postgresql": strict({"parameters": {"type": "object", "additionalProperties": {"type": "string"}}}),
            "bootstrap": strict({"initdb": strict({"database": {"type": "string"}, "owner": {"type": "string"}})}),
            "storage": strict({"size": {"type": "string"}, "storageClass": {"type": "string"}}, ["size"]),
            "monitoring": strict({"enablePodMonitor": {"type": "boolean"}}),
        }, ["instances", "storage"]),
    }, ["apiVersion", "kind", "metadata", "spec"]),
}


def documents(path):
    with open(path) as file:
        return [doc for doc in yaml.safe_load_all(file) if doc]


def workers():
    """The worker kinds: each Sources/Executables/mingus-<kind>-worker but the test worker."""
    return sorted(os.path.basename(p)[len("mingus-"):-len("-worker")]
                  for p in glob.glob(os.path.join(ROOT, "Sources/Executables/mingus-*-worker")) if not p.endswith("mingus-test-worker"))


def check_kubernetes(validate):
    folder = os.path.join(ROOT, "Deploy/kubernetes")
    kustomization = documents(os.path.join(folder, "kustomization.yaml"))[0]
    objects, builtin_files = [], []
    for name in kustomization["resources"]:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            problem("kustomization.yaml", f"lists {name}, which does not exist")
            continue
        docs = documents(path)
        if any("." not in doc["apiVersion"].split("/")[0] or doc["apiVersion"].startswith(("apps/", "batch/", "policy/"))
               for doc in docs):
            builtin_files.append(path)
        for doc in docs:
            objects.append((name, doc))
            schema = OPERATOR_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
            if schema:
                for error in jsonschema.Draft202012Validator(schema).iter_errors(doc):
                    problem(f"{name} {doc['kind']}/{doc['metadata'].get('name')}", f"{'.'.join(map(str, error.path))}: {error.message}")
            elif "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].startswith(("apps/", "batch/", "policy/")):
                problem(name, f"{doc['apiVersion']} {doc['kind']} has no schema here")
    for file in sorted(glob.glob(os.path.join(folder, "*.yaml"))):
        if os.path.basename(file) not in kustomization["resources"] + ["kustomization.yaml"]:
            problem(os.path.basename(file), "not listed in kustomization.yaml")
    result = subprocess.run([validate, "--strict", "--quiet", *builtin_files], capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("ERROR") or (result.returncode != 0 and line.strip()):
            problem("kubernetes-validate", line)

    by_kind = {}
    for file, doc in objects:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments, scaled = by_kind.get("Deployment", {}), by_kind.get("ScaledObject", {})
    for kind in workers():
        deployment = deployments.get(f"mingus-{kind}")
        if not deployment:
            problem("workers.yaml", f"no Deployment mingus-{kind}")
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if container.get("command") != [f"mingus-{kind}-worker"]:
            problem(f"Deployment mingus-{kind}", f"runs {container.get('command')}, not mingus-{kind}-worker")
        probes = {container.get("readinessProbe", {}).get("httpGet", {}).get("path"), container.get("livenessProbe", {}).get("httpGet", {}).get("path")}
        if probes != {"/readyz", "/healthz"}:
            problem(f"Deployment mingus-{kind}", "probes must be /readyz (readiness) and /healthz (liveness)")
        scaler = scaled.get(f"mingus-{kind}")
        if not scaler:
            problem("autoscaling.yaml", f"no ScaledObject mingus-{kind}")
        else:
            if scaler["spec"]["scaleTargetRef"]["name"] != f"mingus-{kind}":
                problem(f"ScaledObject mingus-{kind}", "scales another Deployment")
            if scaler["spec"]["triggers"][0]["metadata"]["queueName"] != f"mingus.{kind}":
                problem(f"ScaledObject mingus-{kind}", f"watches {scaler['spec']['triggers'][0]['metadata']['queueName']}, not mingus.{kind}")
    for name, deployment in deployments.items():
        if name in scaled and "replicas" in deployment["spec"]:
            problem(f"Deployment {name}", "sets replicas although KEDA scales it (each apply would reset them)")
    secrets = {"mingus-amqp", "mingus-postgres-app", "mingus-keys"}
    for file, doc in objects:
        text = json.dumps(doc)
        for name in re.findall(r'"secretName": "([^"]+)"', text) + re.findall(r'"secretKeyRef": \{"name": "([^"]+)"', text):
            if name not in secrets:
                problem(f"{file} {doc['kind']}/{doc['metadata']['name']}", f"names Secret {name}, not one of {sorted(secrets)} (config.yaml)")
    if "gateway" not in {d["spec"]["selector"].get("app.kubernetes.io/component") for d in by_kind.get("Service", {}).values()}:
        problem("gateway.yaml", "no Service selects the gateway")


def check_compose():
    compose = documents(os.path.join(ROOT, "Deploy/docker/compose.yaml"))[0]
    services = compose["services"]
    for kind in workers():
        service = services.get(kind)
        if not service:
            problem("compose.yaml", f"no service {kind}")
        elif service.get("command") != [f"mingus-{kind}-worker"]:
            problem(f"compose.yaml {kind}", f"runs {service.get('command')}")
    if services.get("gateway", {}).get("command") != ["mingus-gateway"]:
        problem("compose.yaml", "no gateway service running mingus-gateway")
    dockerfile = open(os.path.join(ROOT, "Deploy/docker/Dockerfile")).read()
    for kind in workers():
        if f"mingus-{kind}-worker" not in dockerfile:
            problem("Dockerfile", f"does not copy mingus-{kind}-worker")


def check_dashboard():
    path = os.path.join(ROOT, "Deploy/grafana/mingus-dashboard.json")
    dashboard = json.load(open(path))
    ids = set()
    for panel in dashboard.get("panels", []):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problem("mingus-dashboard.json", f"panel id {panel.get('id')} twice")
        ids.add(panel.get("id"))
        targets = panel.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets):
            problem("mingus-dashboard.json", f"panel {title} has no Prometheus query")
    if not ids:
        problem("mingus-dashboard.json", "no panels")


def main():
    validate = sys.argv[1] if len(sys.argv) > 1 else "kubernetes-validate"
    check_kubernetes(validate)
    check_compose()
    check_dashboard()
    for line in problems:
        print(f"check-deploy: {line}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
