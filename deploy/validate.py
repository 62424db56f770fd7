"""Checks Porthole's deployment files; run by deploy/validate.sh (see there for usage).

Every problem found is printed, then the exit status is 1. Checks:
  schema      each object against the Kubernetes JSON schema of --k8s-version, strict
              (unknown fields fail), with kubernetes-validate; an unknown kind/apiVersion
              fails too (kubernetes-validate itself only warns about those)
  security    every container of every workload: runAsNonRoot, runAsUser 65532,
              readOnlyRootFilesystem, allowPrivilegeEscalation false, capabilities drop
              ALL, seccomp RuntimeDefault, CPU and memory requests and limits, every
              volumeMount names a volume
  flags       every flag and PORTHOLE_* variable given to `porthole` exists in
              cli/src/args.rs for that subcommand; every flag and PORTHOLE_COLLECTOR_*
              variable given to `porthole-collector` is in its CLI contract
  paths       the paths those flags name lie on a mounted volume (writable ones on a
              writable one): nothing is written to the read-only root filesystem
  probes      porthole servers: readiness GET /readyz and liveness GET /healthz on the
              --http-addr port; the collector: liveness GET /healthz on its --http-addr
              port, downward-API identity env, shareProcessNamespace, grace period >= 30 s
  references  (per rendered overlay / example) Service selectors and targetPorts,
              HPA and PDB targets, NetworkPolicy selectors, Secrets, ConfigMaps,
              ServiceAccounts and Roles that objects refer to all exist
  dockerfiles final stage: numeric non-root USER, tagged base images, no RUN (no shell),
              exec-form ENTRYPOINT, EXPOSEd ports; builder: cargo build --release --locked
"""

from __future__ import annotations

import argparse
import posixpath
import re
import sys
from pathlib import Path

import yaml

try:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("validate.py: this Python has no kubernetes-validate "
             "(pip install -r tests/python/requirements.lock)")

ERRORS: list[str] = []
NOTES: list[str] = []


def error(where: str, message: str) -> None:
    ERRORS.append(f"{where}: {message}")


# ---------------------------------------------------------------------------------------
# The command-line contracts
# ---------------------------------------------------------------------------------------

def kebab(name: str) -> str:
    return name.replace("_", "-")


def parse_args_rs(path: Path) -> dict:
    """Reads the clap derive structs of cli/src/args.rs: the long flags (and their env
    variables) accepted by each subcommand, global flags included."""
    text = path.read_text()
    structs: dict[str, list[tuple[str, str, str | None]]] = {}
    for match in re.finditer(r"pub struct (\w+) \{\n(.*?)\n\}", text, re.S):
        name, body = match.group(1), match.group(2)
        items: list[tuple[str, str, str | None]] = []
        attrs: list[str] = []
        for line in body.splitlines():
            stripped = line.strip()
            if stripped.startswith("///") or stripped.startswith("//"):
                continue
            field = re.match(r"pub (\w+)\s*:\s*([\w:<>]+)", stripped)
            if field is None:
                attrs.append(stripped)
                continue
            attr = " ".join(attrs)
            attrs = []
            fname, ftype = field.group(1), field.group(2)
            if re.search(r"#\[command\([^\]]*\bflatten\b", attr):
                items.append(("flatten", ftype, None))
            elif re.search(r"#\[arg\(", attr) and re.search(r"[(,]\s*long\b", attr):
                explicit = re.search(r'\blong\s*=\s*"([^"]+)"', attr)
                flag = explicit.group(1) if explicit else kebab(fname)
                env = re.search(r'\benv\s*=\s*"([^"]+)"', attr)
                kind = "global" if re.search(r"\bglobal\s*=\s*true\b", attr) else "flag"
                items.append((kind, flag, env.group(1) if env else None))
        structs[name] = items

    def flags_of(struct: str, seen=()) -> dict[str, str | None]:
        if struct not in structs or struct in seen:
            raise SystemExit(f"validate.py: cannot resolve struct {struct} in {path}")
        out: dict[str, str | None] = {}
        for kind, value, env in structs[struct]:
            if kind == "flatten":
                out.update(flags_of(value, seen + (struct,)))
            else:
                out[value] = env
        return out

    enum = re.search(r"pub enum Command \{\n(.*?)\n\}", text, re.S)
    if enum is None or "Cli" not in structs:
        raise SystemExit(f"validate.py: no `struct Cli` / `enum Command` in {path}")
    global_flags = {flag: env for kind, flag, env in structs["Cli"] if kind == "global"}
    commands: dict[str, dict[str, str | None]] = {}
    for variant, struct in re.findall(r"^\s*(\w+)\((\w+)\),", enum.group(1), re.M):
        sub = re.sub(r"(?<!^)(?=[A-Z])", "-", variant).lower()
        commands[sub] = {**global_flags, **flags_of(struct)}
    if not commands.get("serve"):
        raise SystemExit(f"validate.py: found no flags for `porthole serve` in {path}")
    return {"commands": commands, "global": global_flags}


# The collector's CLI contract (porthole-collector; each flag also reads
# PORTHOLE_COLLECTOR_<FLAG>).
COLLECTOR_FLAGS = [
    "config", "endpoint", "files", "stack-traces", "pod-logs", "pod-events", "buffer-dir", "max-buffer-bytes", "service",
    "token-file", "otlp-grpc-addr", "otlp-http-addr", "http-addr",
]
COLLECTOR_IDENTITY_ENV = [
    "K8S_POD_NAME", "K8S_NAMESPACE", "K8S_NODE_NAME", "K8S_POD_UID",
    "K8S_CONTAINER_NAME", "SERVICE_NAME", "SERVICE_VERSION",
]
# Variables of DESIGN.md that cli/src/args.rs does not read yet. They are set in the
# manifests (an unread variable is harmless, unlike an unknown flag, which clap refuses)
# and reported as a note until args.rs has them.
PENDING_PORTHOLE_ENV: dict[str, str] = {}
SERVER_COMMANDS = {"serve", "ingest", "query"}

# ---------------------------------------------------------------------------------------
# Kubernetes objects
# ---------------------------------------------------------------------------------------

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def load(path: Path) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        error(str(path), f"not valid YAML: {e}")
        return []
    for doc in docs:
        if not isinstance(doc, dict):
            error(str(path), "a document that is not a mapping")
    return [d for d in docs if isinstance(d, dict)]


def name_of(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def pod_template(obj: dict) -> tuple[dict, dict] | None:
    """(pod metadata, pod spec) of a workload."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return obj.get("metadata") or {}, spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if kind in WORKLOAD_KINDS:
        template = spec.get("template") or {}
        return template.get("metadata") or {}, template.get("spec") or {}
    return None


def check_schema(where: str, obj: dict, version: str) -> None:
    if not obj.get("apiVersion") or not obj.get("kind"):
        error(where, "object without apiVersion or kind")
        return
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        error(where, f"{name_of(obj)} does not match the Kubernetes {version} schema at "
                     f"`{path}`: {e.message}")
    except SchemaNotFoundError as e:
        error(where, f"{name_of(obj)}: {e.message}")
    except VersionNotSupportedError:
        raise SystemExit(f"validate.py: kubernetes-validate has no schema for Kubernetes {version}")


def program_of(container: dict) -> str:
    command = container.get("command") or []
    if command:
        return posixpath.basename(str(command[0]))
    image = str(container.get("image", ""))
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def parse_flags(args: list[str]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(positional words, [(flag, value)]) of an argument list of value-taking flags."""
    words: list[str] = []
    flags: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        arg = str(args[i])
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                name, value = arg[2:], str(args[i + 1])
                i += 1
            else:
                name, value = arg[2:], None
            flags.append((name, value))
        else:
            words.append(arg)
        i += 1
    return words, flags


def covering_mount(path: str, mounts: list[dict]) -> dict | None:
    best = None
    for mount in mounts:
        root = str(mount.get("mountPath", "")).rstrip("/") or "/"
        if path == root or path.startswith(root + "/"):
            if best is None or len(root) > len(best["mountPath"].rstrip("/")):
                best = mount
    return best


def check_path(where: str, what: str, path: str | None, mounts: list[dict], writable: bool) -> None:
    if path is None or "$(" in path:
        return
    if not path.startswith("/"):
        error(where, f"{what} is the relative path {path!r}: give an absolute path on a volume")
        return
    # A glob's directory is what must be mounted.
    directory = path
    while any(c in posixpath.basename(directory) for c in "*?["):
        directory = posixpath.dirname(directory)
    mount = covering_mount(directory, mounts)
    if mount is None:
        error(where, f"{what} {path!r} is on no volume (the root filesystem is read-only)")
    elif writable and mount.get("readOnly"):
        error(where, f"{what} {path!r} must be writable but its volume "
                     f"{mount.get('name')!r} is mounted readOnly")


def probe_port(container: dict, probe: dict | None) -> tuple[str | None, int | None]:
    get = (probe or {}).get("httpGet") or {}
    port = get.get("port")
    if isinstance(port, str):
        for p in container.get("ports") or []:
            if p.get("name") == port:
                port = p.get("containerPort")
                break
        else:
            port = None
    return get.get("path"), port


def addr_port(addr: str | None, default: int) -> int | None:
    if addr is None:
        return default
    try:
        return int(addr.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def env_map(container: dict) -> dict[str, dict]:
    return {e.get("name"): e for e in container.get("env") or []}


def check_workload(where: str, obj: dict, contract: dict, counts: dict) -> None:
    template = pod_template(obj)
    if template is None:
        return
    meta, pod = template
    wname = name_of(obj)
    pod_sc = pod.get("securityContext") or {}
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    if obj.get("kind") == "StatefulSet":
        volumes |= {(t.get("metadata") or {}).get("name")
                    for t in (obj.get("spec") or {}).get("volumeClaimTemplates") or []}
    containers = list(pod.get("containers") or []) + list(pod.get("initContainers") or [])
    if not containers:
        error(where, f"{wname} has no containers")
    for c in containers:
        cname = f"{wname} container {c.get('name')!r}"
        counts["containers"] += 1
        sc = c.get("securityContext") or {}

        def eff(key):
            return sc.get(key, pod_sc.get(key))

        if eff("runAsNonRoot") is not True:
            error(where, f"{cname}: runAsNonRoot is not true")
        if eff("runAsUser") != 65532:
            error(where, f"{cname}: runAsUser is {eff('runAsUser')!r}, not 65532")
        if sc.get("readOnlyRootFilesystem") is not True:
            error(where, f"{cname}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            error(where, f"{cname}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            error(where, f"{cname}: privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            error(where, f"{cname}: capabilities do not drop ALL")
        if ((sc.get("capabilities") or {}).get("add")):
            error(where, f"{cname}: adds capabilities")
        if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
            error(where, f"{cname}: seccompProfile is not RuntimeDefault")
        resources = c.get("resources") or {}
        for section in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if not (resources.get(section) or {}).get(res):
                    error(where, f"{cname}: no {res} in resources.{section}")
        mounts = c.get("volumeMounts") or []
        for m in mounts:
            if m.get("name") not in volumes:
                error(where, f"{cname}: volumeMount {m.get('name')!r} names no volume of the pod")

        program = program_of(c)
        env = env_map(c)
        words, flags = parse_flags(list(c.get("args") or []) + list((c.get("command") or [])[1:]))
        if program == "porthole":
            counts["porthole"] += 1
            check_porthole(where, cname, c, words, flags, env, mounts, contract)
        elif program == "porthole-collector":
            counts["collector"] += 1
            check_collector(where, cname, c, words, flags, env, mounts, pod, containers)


def check_porthole(where, cname, c, words, flags, env, mounts, contract) -> None:
    commands = contract["commands"]
    if not words:
        error(where, f"{cname}: `porthole` without a subcommand")
        return
    sub = words[0]
    if sub not in commands:
        error(where, f"{cname}: `porthole {sub}` is not a subcommand of cli/src/args.rs "
                     f"({', '.join(sorted(commands))})")
        return
    known = commands[sub]
    given = {}
    for flag, value in flags:
        if flag not in known:
            error(where, f"{cname}: `porthole {sub} --{flag}` is not a flag of cli/src/args.rs")
        given[flag] = value
    envs = {e for e in known.values() if e}
    for name in env:
        if name.startswith("PORTHOLE_") and name not in envs:
            if name in PENDING_PORTHOLE_ENV:
                NOTES.append(f"{cname}: {name} ({PENDING_PORTHOLE_ENV[name]}) is not read by "
                             f"cli/src/args.rs yet; it takes effect once the flag exists")
            else:
                error(where, f"{cname}: env {name} is not a PORTHOLE_ variable of "
                             f"`porthole {sub}` in cli/src/args.rs")

    def value(flag):
        if flag in given:
            return given[flag]
        variable = known.get(flag)
        if variable and variable in env:
            return env[variable].get("value")
        return None

    if sub not in SERVER_COMMANDS:
        return
    check_path(where, f"{cname}: --auth-token-file", value("auth-token-file"), mounts, False)
    if "PORTHOLE_RULES" in env:
        check_path(where, f"{cname}: PORTHOLE_RULES", env["PORTHOLE_RULES"].get("value"), mounts, False)
    if value("storage") is None and sub in ("serve", "ingest", "query"):
        if value("data-dir") is None:
            error(where, f"{cname}: neither --storage nor --data-dir: the tables would go to "
                         f"./porthole-data in the image")
        check_path(where, f"{cname}: --data-dir", value("data-dir"), mounts, True)
    tmp = (env.get("TMPDIR") or {}).get("value", "/tmp")
    check_path(where, f"{cname}: TMPDIR (full-text indexes are built there)", tmp, mounts, True)
    http_port = addr_port(value("http-addr"), 8080)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got_path, got_port = probe_port(c, c.get(probe))
        if got_path != path or got_port != http_port:
            error(where, f"{cname}: {probe} must be GET {path} on port {http_port} "
                         f"(--http-addr); it is {got_path!r} on {got_port!r}")


def check_collector(where, cname, c, words, flags, env, mounts, pod, containers) -> None:
    if words:
        error(where, f"{cname}: porthole-collector takes no positional arguments: {words}")
    given: dict[str, list[str | None]] = {}
    for flag, value in flags:
        if flag not in COLLECTOR_FLAGS:
            error(where, f"{cname}: `porthole-collector --{flag}` is not in the collector's "
                         f"CLI contract ({', '.join('--' + f for f in COLLECTOR_FLAGS)})")
        given.setdefault(flag, []).append(value)
    env_flags = {"PORTHOLE_COLLECTOR_" + f.upper().replace("-", "_"): f for f in COLLECTOR_FLAGS}
    for name in env:
        if name.startswith("PORTHOLE_COLLECTOR_") and name not in env_flags:
            error(where, f"{cname}: env {name} is not a PORTHOLE_COLLECTOR_ variable of the contract")

    def values(flag):
        if flag in given:
            return given[flag]
        variable = next(k for k, v in env_flags.items() if v == flag)
        if variable in env:
            return [env[variable].get("value")]
        return []

    if not values("config") and not values("endpoint"):
        error(where, f"{cname}: neither --config nor --endpoint")
    for v in values("buffer-dir"):
        check_path(where, f"{cname}: --buffer-dir", v, mounts, True)
    for v in values("token-file"):
        check_path(where, f"{cname}: --token-file", v, mounts, False)
    for v in values("config"):
        check_path(where, f"{cname}: --config", v, mounts, False)
    for v in values("files"):
        check_path(where, f"{cname}: --files", v, mounts, False)
    for variable in COLLECTOR_IDENTITY_ENV:
        if variable not in env:
            error(where, f"{cname}: no {variable} env (downward API identity)")
    target = (env.get("K8S_CONTAINER_NAME") or {}).get("value")
    others = [o.get("name") for o in containers if o is not c]
    if "K8S_CONTAINER_NAME" in env and target not in others:
        error(where, f"{cname}: K8S_CONTAINER_NAME {target!r} names no other container "
                     f"of the pod ({others})")
    for variable in ("K8S_POD_NAME", "K8S_NAMESPACE", "K8S_NODE_NAME", "K8S_POD_UID"):
        if variable in env and "fieldRef" not in (env[variable].get("valueFrom") or {}):
            error(where, f"{cname}: {variable} should come from the downward API (fieldRef)")
    if pod.get("shareProcessNamespace") is not True:
        error(where, f"{cname}: the pod does not set shareProcessNamespace: true")
    # A native sidecar starts (and is ready) before the app and stops after it, so neither
    # the app's first exports nor its last lines are missed.
    if not any(o is c for o in pod.get("initContainers") or []) or c.get("restartPolicy") != "Always":
        error(where, f"{cname}: not a native sidecar (an initContainer with restartPolicy: "
                     f"Always, so it starts before the app and stops after it)")
    if (c.get("startupProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
        error(where, f"{cname}: no startupProbe GET /readyz (the app would start before the "
                     f"collector listens)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < 30:
        error(where, f"{cname}: terminationGracePeriodSeconds {grace} < 30 (the collector "
                     f"needs up to 25 s after SIGTERM)")
    http = (values("http-addr") or [None])[-1]
    port = addr_port(http, 8686)
    got_path, got_port = probe_port(c, c.get("livenessProbe"))
    if got_path != "/healthz" or got_port != port:
        error(where, f"{cname}: livenessProbe must be GET /healthz on port {port} "
                     f"(--http-addr); it is {got_path!r} on {got_port!r}")
    if http is not None and http.startswith("127."):
        error(where, f"{cname}: --http-addr {http} is loopback: the kubelet cannot probe it")


# ---------------------------------------------------------------------------------------
# References between the objects of one deployable set
# ---------------------------------------------------------------------------------------

def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_references(where: str, objs: list[dict]) -> None:
    def ns(o):
        return (o.get("metadata") or {}).get("namespace") or "default"

    def named(kind):
        return {(ns(o), o["metadata"]["name"]) for o in objs if o.get("kind") == kind}

    workloads = [(o, *pod_template(o)) for o in objs if pod_template(o) is not None]
    secrets, configmaps, accounts = named("Secret"), named("ConfigMap"), named("ServiceAccount")
    roles, namespaces = named("Role"), {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"}
    for o in objs:
        if ns(o) != "default" and namespaces and ns(o) not in namespaces and o.get("kind") != "Namespace":
            NOTES.append(f"{where}: {name_of(o)} is in namespace {ns(o)!r}, which this set "
                         f"does not create")
    for o, meta, pod in workloads:
        n, wname = ns(o), name_of(o)
        labels = meta.get("labels") or {}
        sel = ((o.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if sel and not matches(sel, labels):
            error(where, f"{wname}: spec.selector does not match its pod template's labels")
        sa = pod.get("serviceAccountName")
        if sa and (n, sa) not in accounts:
            error(where, f"{wname}: ServiceAccount {sa!r} is not defined in namespace {n}")
        for v in pod.get("volumes") or []:
            if "secret" in v and not v["secret"].get("optional") and (n, v["secret"].get("secretName")) not in secrets:
                error(where, f"{wname}: volume {v.get('name')!r} uses Secret "
                             f"{v['secret'].get('secretName')!r}, not defined in namespace {n}")
            if "configMap" in v and not v["configMap"].get("optional") and (n, v["configMap"].get("name")) not in configmaps:
                error(where, f"{wname}: volume {v.get('name')!r} uses ConfigMap "
                             f"{v['configMap'].get('name')!r}, not defined in namespace {n}")
        for c in list(pod.get("containers") or []) + list(pod.get("initContainers") or []):
            refs = []
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                if "secretKeyRef" in vf:
                    refs.append(("Secret", vf["secretKeyRef"]))
                if "configMapKeyRef" in vf:
                    refs.append(("ConfigMap", vf["configMapKeyRef"]))
            for e in c.get("envFrom") or []:
                if "secretRef" in e:
                    refs.append(("Secret", e["secretRef"]))
                if "configMapRef" in e:
                    refs.append(("ConfigMap", e["configMapRef"]))
            for kind, ref in refs:
                pool = secrets if kind == "Secret" else configmaps
                if not ref.get("optional") and (n, ref.get("name")) not in pool:
                    error(where, f"{wname} container {c.get('name')!r}: {kind} "
                                 f"{ref.get('name')!r} is not defined in namespace {n}")
        if o.get("kind") == "StatefulSet":
            svc = (o.get("spec") or {}).get("serviceName")
            if svc and (n, svc) not in named("Service"):
                error(where, f"{wname}: serviceName {svc!r} is not a Service in namespace {n}")

    def pods_matching(n, selector):
        return [(o, meta, pod) for o, meta, pod in workloads
                if ns(o) == n and matches(selector, meta.get("labels") or {})]

    for o in objs:
        kind, n, oname = o.get("kind"), ns(o), name_of(o)
        spec = o.get("spec") or {}
        if kind == "Service" and spec.get("selector"):
            backends = pods_matching(n, spec["selector"])
            if not backends:
                error(where, f"{oname}: its selector matches no pod template in this set")
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                for w, _, pod in backends:
                    cports = [p for c in pod.get("containers") or [] for p in c.get("ports") or []]
                    if not any(p.get("name") == target or p.get("containerPort") == target for p in cports):
                        error(where, f"{oname}: targetPort {target!r} is no container port of {name_of(w)}")
        elif kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if not any(w.get("kind") == ref.get("kind") and w["metadata"]["name"] == ref.get("name")
                       and ns(w) == n for w, _, _ in workloads):
                error(where, f"{oname}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not in this set")
            for w, _, pod in workloads:
                if w.get("kind") == ref.get("kind") and w["metadata"]["name"] == ref.get("name"):
                    for metric in spec.get("metrics") or []:
                        res = (metric.get("resource") or {}).get("name")
                        if res and not all(((c.get("resources") or {}).get("requests") or {}).get(res)
                                           for c in pod.get("containers") or []):
                            error(where, f"{oname}: scales on {res} but a container of "
                                         f"{name_of(w)} has no {res} request")
        elif kind == "PodDisruptionBudget":
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if not pods_matching(n, sel):
                error(where, f"{oname}: its selector matches no pod template in this set")
        elif kind == "NetworkPolicy":
            sel = (spec.get("podSelector") or {}).get("matchLabels") or {}
            if sel and not pods_matching(n, sel):
                error(where, f"{oname}: its podSelector matches no pod template in this set")
        elif kind == "RoleBinding":
            ref = spec.get("roleRef") or o.get("roleRef") or {}
            if ref.get("kind") == "Role" and (n, ref.get("name")) not in roles:
                error(where, f"{oname}: Role {ref.get('name')!r} is not defined in namespace {n}")
            for s in o.get("subjects") or []:
                if s.get("kind") == "ServiceAccount" and (s.get("namespace", n), s.get("name")) not in accounts:
                    error(where, f"{oname}: subject ServiceAccount {s.get('namespace')}/{s.get('name')} "
                                 f"is not defined in this set")


# ---------------------------------------------------------------------------------------
# Dockerfiles
# ---------------------------------------------------------------------------------------

def check_dockerfile(package: str, path: Path, expose: set[str]) -> None:
    where = str(path)
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
            image = line.split()[1]
            if image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image):
                error(where, f"base image {image!r} has no fixed tag")
        if stages:
            stages[-1].append(line)
    if len(stages) < 2:
        error(where, "not a multi-stage build")
        return
    builder = " ".join(" ".join(s) for s in stages[:-1])
    # --release, or a profile that inherits it (the collector's size-optimised `sidecar`).
    if not re.search(rf"cargo build (--release|--profile \w+) --locked -p {re.escape(package)}(\s|$)", builder):
        error(where, f"no `cargo build --release|--profile P --locked -p {package}` in a build stage")
    if "rust:1.95" not in builder:
        error(where, "the build stage is not rust:1.95 (the workspace's rust-version)")
    final = stages[-1]
    users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
    if not users:
        error(where, "the final stage sets no USER (it would run as root)")
    else:
        uid = users[-1].split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            error(where, f"final USER {users[-1]!r} is not a numeric non-root uid "
                         f"(runAsNonRoot needs a number)")
        elif int(uid) != 65532:
            error(where, f"final USER {uid} is not 65532, the uid the manifests run as")
    if any(l.upper().startswith("RUN ") for l in final):
        error(where, "the final stage RUNs a command: it has no shell (distroless)")
    entry = [l for l in final if l.upper().startswith("ENTRYPOINT ")]
    if not entry or not entry[-1].split(None, 1)[1].startswith("["):
        error(where, "the final stage has no exec-form ENTRYPOINT [...]")
    exposed = {p for l in final if l.upper().startswith("EXPOSE ") for p in l.split()[1:]}
    if exposed != expose:
        error(where, f"EXPOSEs {sorted(exposed)}, expected {sorted(expose)}")


# ---------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k8s-version", required=True)
    parser.add_argument("--args-rs", required=True, type=Path)
    parser.add_argument("--file", action="append", default=[], type=Path,
                        help="a manifest file, checked on its own (no cross references)")
    parser.add_argument("--set", action="append", default=[], nargs="+", metavar=("NAME", "FILE"),
                        help="a deployable set: NAME then its files (checked with cross references)")
    parser.add_argument("--dockerfile", action="append", default=[],
                        help="PACKAGE=PATH=PORT,PORT")
    parser.add_argument("--kustomization", action="append", default=[], type=Path,
                        help="a kustomize directory whose every manifest must be listed in resources")
    options = parser.parse_args()

    contract = parse_args_rs(options.args_rs)
    print(f"flags: `porthole serve|ingest|query` take {len(contract['commands']['serve'])} "
          f"flags per cli/src/args.rs; porthole-collector {len(COLLECTOR_FLAGS)} (its contract)")
    version = options.k8s_version
    for path in options.file:
        counts = {"containers": 0, "porthole": 0, "collector": 0}
        objs = load(path)
        for obj in objs:
            check_schema(str(path), obj, version)
            check_workload(str(path), obj, contract, counts)
        print(f"file  {path}: {len(objs)} objects, schema {version} strict; "
              f"{counts['containers']} containers checked")
    for entry in options.set:
        name, files = entry[0], [Path(f) for f in entry[1:]]
        counts = {"containers": 0, "porthole": 0, "collector": 0}
        objs = [o for f in files for o in load(f)]
        if not objs:
            error(name, "no objects")
        for obj in objs:
            check_schema(name, obj, version)
            check_workload(name, obj, contract, counts)
        check_references(name, objs)
        kinds: dict[str, int] = {}
        for o in objs:
            kinds[o.get("kind")] = kinds.get(o.get("kind"), 0) + 1
        print(f"set   {name}: {len(objs)} objects ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
              f"schema {version} strict, {counts['containers']} containers "
              f"({counts['porthole']} porthole, {counts['collector']} collector), references")
    for spec in options.dockerfile:
        package, path, ports = spec.split("=")
        check_dockerfile(package, Path(path), set(ports.split(",")))
        print(f"docker {path}: stages, USER, ENTRYPOINT, EXPOSE {ports}, cargo --locked -p {package}")
    for directory in options.kustomization:
        k = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
        listed = set(k.get("resources") or [])
        for f in sorted(directory.glob("*.yaml")):
            if f.name != "kustomization.yaml" and f.name not in listed:
                error(str(directory), f"{f.name} is not in kustomization.yaml's resources "
                                      f"(it would never be deployed)")
        for r in listed:
            if not (directory / r).exists():
                error(str(directory), f"resource {r!r} of kustomization.yaml does not exist")
        print(f"kustomization {directory}: every manifest listed, every resource exists")
    for note in dict.fromkeys(NOTES):
        print(f"NOTE  {note}")
    if ERRORS:
        print(f"\n{len(ERRORS)} problem(s):", file=sys.stderr)
        for e in ERRORS:
            print(f"  FAIL {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
