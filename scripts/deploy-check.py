#!/usr/bin/env python3
"""Checks the deployment files against each other and against the Dockerfile, without a cluster.

    python3 scripts/deploy-check.py            (scripts/container-test.sh runs it)

deploy/k8s/*.yaml must parse and refer to each other correctly (the Service and HPA to the Deployment, the
Deployment to the ConfigMap and Secret, probes and ports to declared ports), run as the image's user, and give
the drain its time; deploy/compose.yaml's zava-mcp service must match the image's port and Prometheus' target
the metrics listener, and the files it mounts must exist. Exits 1 with one line per problem.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def image_facts():
    text = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.M)
    http = re.search(r"ZAVA_HTTP=0\.0\.0\.0:(\d+)", text)
    expose = re.search(r"^EXPOSE (\d+)$", text, re.M)
    check(user and http and expose, "Dockerfile: USER uid:gid, ZAVA_HTTP=0.0.0.0:PORT or EXPOSE not found")
    return int(user.group(1)), int(http.group(1)), int(expose.group(1))


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def check_k8s(uid, http_port):
    docs = {}
    k8s = ROOT / "deploy" / "k8s"
    for path in sorted(k8s.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            if doc.get("kind") == "Kustomization":
                listed = set(doc.get("resources", []))
                present = {p.name for p in k8s.glob("*.yaml")} - {path.name}
                check(listed == present, f"{path.name}: resources {sorted(listed)} != files {sorted(present)}")
                continue
            for field in ("apiVersion", "kind", "metadata"):
                check(field in doc, f"{path.name}: no {field}")
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    deploy = docs.get(("Deployment", "zava-mcp"))
    config = docs.get(("ConfigMap", "zava-mcp"), {}).get("data", {})
    check(deploy is not None, "deploy/k8s: no Deployment zava-mcp")
    check(("Secret", "zava-mcp") in docs, "deploy/k8s: no Secret zava-mcp")
    if deploy is None:
        return
    pod = deploy["spec"]["template"]["spec"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    check(deploy["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment: selector misses the labels")
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(ports.get("http") == http_port == port_of(config.get("ZAVA_HTTP", ":0")),
          f"Deployment port http {ports.get('http')}, ConfigMap ZAVA_HTTP and the image's {http_port} differ")
    check(ports.get("metrics") == port_of(config.get("ZAVA_METRICS", ":0")), "metrics port != ZAVA_METRICS")
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                        ("startupProbe", "/health/live")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ports, f"Deployment {probe}: not {path} on a declared port")
    for ref in container.get("envFrom", []):
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in ref:
                check((kind, ref[key]["name"]) in docs, f"Deployment envFrom: no {kind} {ref[key]['name']}")
    security = pod.get("securityContext", {})
    check(security.get("runAsNonRoot") is True and security.get("runAsUser") == uid,
          f"Deployment: not runAsNonRoot as the image's uid {uid}")
    pause = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["sleep", "0"])
    need = int(config.get("ZAVA_DRAIN_TIMEOUT_SECS", 10)) + int(pause[-1])
    check(pod.get("terminationGracePeriodSeconds", 30) > need,
          f"terminationGracePeriodSeconds must exceed the preStop pause plus the drain ({need} s)")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        check({"/data", "/tmp"} <= mounts, "a read-only root file system needs volumes at /data and /tmp")
    service = docs.get(("Service", "zava-mcp"))
    check(service is not None and service["spec"]["selector"].items() <= labels.items(),
          "Service zava-mcp does not select the Deployment's pods")
    for p in (service or {}).get("spec", {}).get("ports", []):
        check(p["targetPort"] in ports, f"Service port {p['name']}: target {p['targetPort']} is not declared")
    hpa = docs.get(("HorizontalPodAutoscaler", "zava-mcp"))
    check(hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "zava-mcp", "HPA does not scale zava-mcp")
    names = [m.get("pods", {}).get("metric", {}).get("name") for m in (hpa or {}).get("spec", {}).get("metrics", [])]
    check("zava_tool_calls_in_flight" in names, "HPA does not scale on zava_tool_calls_in_flight")


def check_compose(http_port):
    deploy = ROOT / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    services = compose["services"]
    check({"postgres", "redis", "zava-mcp", "prometheus", "grafana"} <= services.keys(), "compose: a service is missing")
    zava = services["zava-mcp"]
    env = zava["environment"]
    check(any(p.endswith(f":{http_port}") for p in zava["ports"]), f"compose: zava-mcp does not publish {http_port}")
    check(str(http_port) in " ".join(zava["healthcheck"]["test"]), "compose: zava-mcp's health check port")
    prometheus = yaml.safe_load((deploy / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    check(f"zava-mcp:{port_of(env['ZAVA_METRICS'])}" in targets, "prometheus.yml does not scrape ZAVA_METRICS")
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                check((deploy / source).exists(), f"compose: mounted {source} does not exist")


uid, http_port, expose = image_facts()
check(http_port == expose, f"Dockerfile: ZAVA_HTTP port {http_port} != EXPOSE {expose}")
check_k8s(uid, http_port)
check_compose(http_port)
for p in problems:
    print(f"deploy-check: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
