#!/usr/bin/env python3
"""A kind cluster of real kubelets for the Molecule scenario `molecule/kind`, on a machine with no registry.

dockerd runs inside the network namespace `llmd-kind` (loopback, the kind bridge, nothing else), with a runc
wrapper as its default runtime (this machine's capability bounding set lacks CAP_SYS_RESOURCE). Every image is
made here from binaries built by tests/support/kind/build.sh: the node image from a debootstrap tree, the
control-plane images as single-layer imports baked into it, the workloads' images pushed to a registry served
on the bridge, which every node's containerd uses as the mirror of `localhost:5001`.

    kindcluster.py images               build the images (scripts/setup.sh runs it)
    kindcluster.py up | down | wipe | status
    kindcluster.py exec -- CMD...       run CMD inside the namespace with KUBECONFIG set
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))     # run as a script: the repository root, for tests.support
from tests.support.netns import Sandbox, cli  # noqa: E402

CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
BIN = CACHE / "bin"
KIND_CACHE = CACHE / "kind"
ROOTFS = KIND_CACHE / "rootfs"                # the node's debootstrap tree (build.sh)
STATE = Path(os.environ.get("LLMD_KIND_DIR", "/var/tmp/llmd-wide-ep/kind"))
NETNS = "llmd-kind"
KUBECONFIG = STATE / "kubeconfig"
DOCKER_SOCK = STATE / "docker.sock"
CLUSTER = "llmd"
KUBE_VERSION = "v1.36.3"
NODE_IMAGE = f"llmd.local/kind-node:{KUBE_VERSION}"
SUBNET, GATEWAY = "172.30.0.0/16", "172.30.0.1"   # the kind bridge, made here so the registry address is fixed
REGISTRY = "localhost:5001"                  # what pods name; each node's containerd mirrors it to the bridge
REGISTRY_PORT = 5001
# Three workers hold the scenario (a prefill pod, a decode group of two); two more are the room a surge group
# of decode needs, so upgrade.yml rolls with one group beside the old, as it would on a cluster with spare nodes.
WORKERS = 5
# What a worker advertises: 4 GPUs and one InfiniBand HCA as extended resources on the node's status (the
# documented way without a device plugin), and the GPU model label the local provider's pods select. The
# scenario's pods ask for 4 GPUs each, so every pod has a node of its own and a group of two spans two nodes.
WORKER_CAPACITY = {"nvidia.com/gpu": "4", "rdma/ib": "1"}
WORKER_LABELS = {"gpu.nvidia.com/model": "H200", "nvidia.com/gpu.product": "NVIDIA-H200"}


# nsenter, not `ip netns exec`: that remounts /sys, which hides the cgroup mounts dockerd needs. Both daemons'
# argv name STATE (their config files), which tells them from a process that reused a pid.
SANDBOX = Sandbox(netns=NETNS, tag="kindcluster", state=STATE, marker=str(STATE), kubectl_bin=BIN / "kubectl",
                  kubeconfig=KUBECONFIG, enter=("nsenter", f"--net=/var/run/netns/{NETNS}"))
log, in_netns, wait_for, kubectl = SANDBOX.log, SANDBOX.cmd, SANDBOX.wait_for, SANDBOX.kubectl


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def docker_env():
    # Debian's docker client matches its daemon (20.10); a newer client on PATH might not.
    return {**os.environ, "DOCKER_HOST": f"unix://{DOCKER_SOCK}", "PATH": f"/usr/bin:{BIN}:{os.environ['PATH']}"}


def docker(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", "input" not in kw or isinstance(kw.get("input"), str))
    return run(["/usr/bin/docker", *args], env=docker_env(), **kw)


# --- namespace, dockerd, registry ---------------------------------------------------------------------------
def cgroup_mount_ns():
    """dockerd needs the cgroup mounts under /sys, which `ip netns exec` (the tests run under it) hides behind a
    sysfs of its own. None when this process sees them; else the nearest ancestor in another mount namespace."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers") or os.path.ismount("/sys/fs/cgroup/devices"):
        return None
    own, pid = os.readlink("/proc/self/ns/mnt"), os.getppid()
    while pid > 1:
        if os.readlink(f"/proc/{pid}/ns/mnt") != own:
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    sys.exit("no cgroup mounts in this mount namespace nor an ancestor's: dockerd cannot start")


def ensure_dockerd():
    # Loopback, the bridges and the nodes' veths only; and no route at all: no way out, whatever a node or pod tries.
    SANDBOX.ensure_netns(allowed_links=("lo", "docker0", "br-", "veth"))
    STATE.mkdir(parents=True, exist_ok=True)
    wrapper = STATE / "runc"
    shutil.copy(HERE / "node" / "kind" / "bin" / "runc", wrapper)
    config = {
        "data-root": str(KIND_CACHE / "docker"), "exec-root": str(STATE / "exec"), "pidfile": str(STATE / "docker.pid"),
        "hosts": [f"unix://{DOCKER_SOCK}"], "runtimes": {"llmd-runc": {"path": str(wrapper)}},
        "default-runtime": "llmd-runc", "storage-driver": "overlay2", "log-level": "warn",
        # its own containerd namespaces: never the host's
        "containerd-namespace": "llmd-kind", "containerd-plugins-namespace": "llmd-kind-plugins",
    }
    (STATE / "daemon.json").write_text(json.dumps(config, indent=1))
    if SANDBOX.running("dockerd") and docker("version", check=False).returncode == 0:
        return
    host_mounts = [f"--mount=/proc/{pid}/ns/mnt" for pid in [cgroup_mount_ns()] if pid]
    SANDBOX.start("dockerd", ["dockerd", f"--config-file={STATE / 'daemon.json'}"],
                  enter=[SANDBOX.enter[0], *host_mounts, *SANDBOX.enter[1:]])
    wait_for("dockerd", lambda: docker("version", check=False).returncode == 0, timeout=60, daemon="dockerd")


def ensure_registry():
    """The distribution registry (built from its Go module) as a process in the namespace, storage in the cache."""
    config = STATE / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(KIND_CACHE / "registry")}, "delete": {"enabled": True}},
        "http": {"addr": f"0.0.0.0:{REGISTRY_PORT}"}}))
    SANDBOX.start("registry", [str(KIND_CACHE / "bin" / "registry"), "serve", str(config)])
    probe = in_netns(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{REGISTRY_PORT}/v2/"])
    wait_for("the registry", lambda: run(probe, check=False, capture_output=True).returncode == 0, timeout=30,
             daemon="registry")


def sweep_stale_bridges():
    """Bridges in the namespace that this dockerd does not own: left by a dockerd with another data-root (another
    LLMD_CACHE) or a lost network store. One holding the kind subnet takes the namespace's route to it, and the
    nodes can no longer reach each other (kubeadm join times out), so they go before the network is made."""
    ids = docker("network", "ls", "-q", "--no-trunc", "--filter", "driver=bridge").stdout.split()
    named = '{{index .Options "com.docker.network.bridge.name"}}'   # a network made with its own bridge name
    names = docker("network", "inspect", "-f", named, *ids).stdout.split()
    owned = {"docker0", *names, *(f"br-{i[:12]}" for i in ids)}
    links = json.loads(run(in_netns(["ip", "-j", "link", "show", "type", "bridge"]), capture_output=True,
                           text=True).stdout or "[]")
    for stale in sorted({link["ifname"] for link in links} - owned):
        log(f"removing bridge {stale} from netns {NETNS}: no network of this dockerd owns it")
        run(in_netns(["ip", "link", "del", stale]))


def ensure_network():
    sweep_stale_bridges()
    if docker("network", "inspect", "kind", check=False).returncode == 0:
        return
    docker("network", "create", "--driver=bridge", f"--subnet={SUBNET}", f"--gateway={GATEWAY}",
           "-o", "com.docker.network.bridge.enable_ip_masquerade=true", "kind")


# --- images -----------------------------------------------------------------------------------------------
def closure(binaries, root="/"):
    """Each binary and the shared libraries it loads, as image path -> file on this machine (under root)."""
    files = {}
    for binary in binaries:
        files[binary] = Path(root, binary.lstrip("/"))
        ldd = ["ldd", binary] if root == "/" else ["chroot", str(root), "ldd", binary]
        for line in run(ldd, capture_output=True, text=True, check=False).stdout.splitlines():
            for word in line.split():
                if word.startswith("/") and not word.startswith("/proc"):
                    files[word] = Path(root, word.lstrip("/"))
    return files


def import_image(tag, files, entrypoint=None, user=None, links=None):
    """A single-layer image from files (image path -> source file), like `docker import` of a static binary."""
    with tempfile.NamedTemporaryFile(suffix=".tar") as tmp:
        with tarfile.open(tmp.name, "w") as tar:
            for name, mode in (("tmp", 0o1777), ("etc", 0o755), ("var/run", 0o755)):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            passwd = b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
            info = tarfile.TarInfo("etc/passwd")
            info.size = len(passwd)
            tar.addfile(info, io.BytesIO(passwd))
            for dest, src in sorted(files.items()):
                tar.add(os.path.realpath(src), arcname=dest.lstrip("/"), recursive=True)
            for dest, target in (links or {}).items():
                info = tarfile.TarInfo(dest.lstrip("/"))
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        changes = ["ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        if entrypoint:
            changes.append("ENTRYPOINT " + json.dumps(entrypoint))
        if user:
            changes.append(f"USER {user}")
        docker("import", *[a for c in changes for a in ("--change", c)], tmp.name, tag)


def digest(*paths):
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fresh(tag, inputs):
    """Whether the image exists and was made from these inputs; records them otherwise (after the caller built)."""
    stamp = KIND_CACHE / "stamps" / tag.replace("/", "_").replace(":", "_")
    if stamp.exists() and stamp.read_text() == inputs and docker("image", "inspect", tag, check=False).returncode == 0:
        return True, stamp
    return False, stamp


def build_image(tag, inputs, make):
    ok, stamp = fresh(tag, inputs)
    if ok:
        log(f"{tag}: up to date")
        return False
    t0 = time.time()
    make()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(inputs)
    log(f"{tag}: built in {time.time() - t0:.1f}s")
    return True


# The node image carries what kubeadm runs before any registry is reachable (static pods, kube-proxy, CoreDNS);
# kubeadm names them, the etcd tag is the one built (kind's kubeadm config patch sets it).
ETCD_TAG = "3.6.14-0"
PAUSE = "registry.k8s.io/pause:3.10.2"
COREDNS = "registry.k8s.io/coredns/coredns:v1.14.2"
IPTABLES = ["/usr/sbin/xtables-nft-multi", "/usr/sbin/conntrack"]


def control_plane_images():
    kube = {f"registry.k8s.io/{c}:{KUBE_VERSION}": {f"/usr/local/bin/{c}": BIN / c}
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    images = {**kube, f"registry.k8s.io/etcd:{ETCD_TAG}": {"/usr/local/bin/etcd": BIN / "etcd"},
              PAUSE: {"/pause": KIND_CACHE / "bin" / "pause"},
              COREDNS: {"/coredns": KIND_CACHE / "bin" / "coredns"}}
    xtables = "/usr/lib/x86_64-linux-gnu/xtables"   # iptables' match and target modules: their libraries too
    proxy = closure(IPTABLES + sorted(f"{xtables}/{m.name}" for m in (ROOTFS / xtables.lstrip("/")).glob("*.so")),
                    ROOTFS)
    proxy["/usr/local/bin/kube-proxy"] = KIND_CACHE / "bin" / "kube-proxy"
    images[f"registry.k8s.io/kube-proxy:{KUBE_VERSION}"] = proxy
    entrypoints = {PAUSE: ["/pause"], COREDNS: ["/coredns"]}
    links = {f"/usr/sbin/{n}": "xtables-nft-multi" for n in
             ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")}
    for tag, files in images.items():
        build_image(tag, digest(*files.values()), lambda t=tag, f=files: import_image(
            t, f, entrypoints.get(t), links=links if "kube-proxy" in t else None))
    return list(images)


def workload_images():
    """What the scenario deploys, pushed to the registry under localhost:5001 (the names its inventory uses)."""
    sim = closure(["/bin/bash", "/usr/bin/find", "/usr/bin/sleep"], ROOTFS)   # sleep: the preStop wait
    sim["/usr/local/bin/llm-d-inference-sim"] = BIN / "llm-d-inference-sim"
    sim["/usr/local/bin/vllm"] = HERE / "images" / "vllm"
    epp = closure([str(KIND_CACHE / "bin" / "epp")])
    epp["/app/epp"] = epp.pop(str(KIND_CACHE / "bin" / "epp"))
    images = {
        f"{REGISTRY}/lws:v0.7.0": ({"/manager": BIN / "lws-manager"}, ["/manager"], "65532:65532"),
        **{f"{REGISTRY}/lws:v{v}": ({"/manager": BIN / f"lws-manager-{v}"}, ["/manager"], "65532:65532")
           for v in ("0.8.0", "0.9.0")},   # the releases test_32 upgrades the controller to
        f"{REGISTRY}/llm-d-inference-scheduler:v0.4.0": (epp, ["/app/epp"], "65532:65532"),
        f"{REGISTRY}/llm-d-routing-sidecar:v0.4.0": ({"/app/pd-sidecar": KIND_CACHE / "bin" / "pd-sidecar"},
                                                      ["/app/pd-sidecar"], "65532:65532"),
        f"{REGISTRY}/llm-d-inference-sim:v0.10.2": (sim, None, None),
    }
    for tag, (files, entrypoint, user) in images.items():
        def make(t=tag, f=files, e=entrypoint, u=user):
            import_image(t, f, e, u)
            docker("push", t)
        build_image(tag, digest(*files.values()), make)
    return list(images)


def node_image(preloaded):
    node_files = HERE / "node"
    inputs = digest(node_files, KIND_CACHE / "bin" / "kubelet", KIND_CACHE / "bin" / "kubeadm",
                    ROOTFS / ".llmd-stamp") + " " + " ".join(
        docker("image", "inspect", "-f", "{{.Id}}", t).stdout.strip() for t in preloaded)

    def make():
        stage = Path(tempfile.mkdtemp(prefix="kind-node-", dir=KIND_CACHE))
        try:
            run(["cp", "-a", f"{ROOTFS}/.", str(stage)])
            run(["cp", "-a", f"{node_files}/.", str(stage)])
            for b in ("kubelet", "kubeadm"):
                shutil.copy(KIND_CACHE / "bin" / b, stage / "usr/bin" / b)
            shutil.copy(BIN / "kubectl", stage / "usr/bin/kubectl")
            (stage / "kind/version").write_text(KUBE_VERSION)
            config = stage / "etc/containerd/config.toml"
            config.write_text(config.read_text().replace("@PAUSE_IMAGE@", PAUSE).replace(
                "@REGISTRY@", REGISTRY).replace("@MIRROR@", f"http://{GATEWAY}:{REGISTRY_PORT}"))
            images = stage / "kind/images"
            images.mkdir(parents=True, exist_ok=True)
            for tag in preloaded:
                docker("save", "-o", str(images / (tag.rsplit("/", 1)[1].replace(":", "_") + ".tar")), tag)
            run(["chroot", str(stage), "systemctl", "enable", "containerd.service", "kubelet.service",
                 "llmd-import-images.service"], capture_output=True)
            # What kind's base image does too: no gettys, no logind, no kernel log, no tmpfiles at boot.
            run(["chroot", str(stage), "systemctl", "mask", "systemd-binfmt.service", "getty.target",
                 "console-getty.service", "systemd-logind.service"], capture_output=True)
            for p in (stage / "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",):
                p.unlink(missing_ok=True)
            with open(stage / "etc/systemd/journald.conf", "a") as f:
                f.write("ReadKMsg=no\n")
            (stage / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
            tar = subprocess.Popen(["tar", "-C", str(stage), "-c", "."], stdout=subprocess.PIPE)
            docker("import", "--change", "ENV container=docker", "--change",
                   'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "-", NODE_IMAGE,
                   stdin=tar.stdout, text=False)
            tar.wait()
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    build_image(NODE_IMAGE, inputs, make)


def cmd_images(_args):
    t0 = time.time()
    ensure_dockerd()
    ensure_registry()
    preloaded = control_plane_images()
    workload_images()
    node_image(preloaded)
    docker("image", "prune", "-f")
    log(f"images ready in {time.time() - t0:.1f}s")


# --- cluster ----------------------------------------------------------------------------------------------
def kind(*args, **kw):
    return run([str(KIND_CACHE / "bin" / "kind"), *args], env=docker_env(), **kw)


KIND_CONFIG = f"""\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  ipFamily: ipv4
  disableDefaultCNI: true      # kindnetd cannot be built here: bridge + host-local, routes added by `up`
  kubeProxyMode: iptables
nodes:
  - role: control-plane
{"".join("  - role: worker" + chr(10) for _ in range(WORKERS))}\
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: {ETCD_TAG}
  - |
    kind: KubeletConfiguration
    failCgroupV1: false        # this machine's host is cgroup v1
"""


def nodes():
    """name -> (node IP on the bridge, pod CIDR) of every node, from the API server."""
    items = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: (next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"),
                                    n["spec"].get("podCIDR")) for n in items}


def cni_conf(cidr):
    return json.dumps({"cniVersion": "1.0.0", "name": "llmd", "plugins": [
        {"type": "bridge", "bridge": "llmd0", "isDefaultGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": cidr}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]})


def ensure_pod_network():
    """What kindnetd does for IPv4: each node's bridge config for its pod CIDR, and a route to every other node's
    pod CIDR via that node. The namespace gets the same routes, so the tests reach pods by IP."""
    wait_for("pod CIDRs on every node", lambda: all(c for _, c in nodes().values()), timeout=60)
    table = nodes()
    for name, (_, cidr) in table.items():
        docker("exec", "-i", name, "sh", "-c", "cat > /etc/cni/net.d/10-llmd.conflist", input=cni_conf(cidr))
        for other, (ip, other_cidr) in table.items():
            if other != name:
                docker("exec", name, "ip", "route", "replace", other_cidr, "via", ip)
    for ip, cidr in table.values():
        run(in_netns(["ip", "route", "replace", cidr, "via", ip]))


def advertise_devices():
    for name in nodes():
        if name.endswith("control-plane"):
            continue
        kubectl("label", "node", name, "--overwrite", *[f"{k}={v}" for k, v in WORKER_LABELS.items()])
        kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"capacity": WORKER_CAPACITY}}))

    def allocatable():
        # the kubelet copies the patched capacity into allocatable at its next status update (seconds later):
        # until then neither the scheduler nor the collection's preflight sees the devices
        out = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
        return all(all(k in n["status"].get("allocatable", {}) for k in WORKER_CAPACITY) for n in out
                   if not n["metadata"]["name"].endswith("control-plane"))
    wait_for("the workers' GPUs and HCAs in their allocatable", allocatable, timeout=120)


def cluster_exists():
    return CLUSTER in kind("get", "clusters", capture_output=True, text=True).stdout.split()


def cmd_up(_args):
    t0 = time.time()
    ensure_dockerd()
    ensure_registry()
    if docker("image", "inspect", NODE_IMAGE, check=False).returncode:
        sys.exit(f"no node image {NODE_IMAGE}: run tests/support/kind/build.sh (scripts/setup.sh does)")
    ensure_network()
    if not cluster_exists():
        log(f"creating kind cluster {CLUSTER}: 1 control-plane, {WORKERS} workers")
        res = kind("create", "cluster", "--name", CLUSTER, "--image", NODE_IMAGE, f"--kubeconfig={KUBECONFIG}",
                   "--config=-", input=KIND_CONFIG, capture_output=True, text=True, check=False)
        if res.returncode:
            sys.exit(f"kind create cluster failed:\n{res.stderr[-4000:]}")
    else:   # kept from an earlier run: its containers may be stopped (dockerd restarted)
        for name in kind("get", "nodes", "--name", CLUSTER, capture_output=True, text=True).stdout.split():
            docker("start", name)
        kind("export", "kubeconfig", "--name", CLUSTER, f"--kubeconfig={KUBECONFIG}", capture_output=True)
    KUBECONFIG.chmod(0o600)
    ensure_pod_network()
    advertise_devices()
    wait_for("every node Ready", lambda: kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=5s",
                                                 check=False).returncode == 0, timeout=180)
    log(f"kind cluster up in {time.time() - t0:.1f}s; KUBECONFIG={KUBECONFIG} (reachable only inside netns {NETNS})")


def cmd_down(_args):
    if SANDBOX.running("dockerd") and cluster_exists():
        kind("delete", "cluster", "--name", CLUSTER, capture_output=True)
    SANDBOX.stop("registry")
    SANDBOX.stop("dockerd", timeout=60)     # its containers get their stop timeout first


def cmd_wipe(args):
    SANDBOX.wipe(lambda: cmd_down(args), f" (images stay in {KIND_CACHE})")


def cmd_status(_args):
    ok = bool(SANDBOX.running("dockerd")) and cluster_exists()
    print(f"kind cluster {CLUSTER}: {'up' if ok else 'down'}")
    if ok:
        print(kubectl("get", "nodes", "-o", "wide", check=False).stdout)
    sys.exit(0 if ok else 1)


def main():
    cli(__doc__, {"images": cmd_images, "up": cmd_up, "down": cmd_down, "wipe": cmd_wipe, "status": cmd_status},
        SANDBOX, {"KUBECONFIG": str(KUBECONFIG), "K8S_AUTH_KUBECONFIG": str(KUBECONFIG),
                  "DOCKER_HOST": f"unix://{DOCKER_SOCK}", "PATH": f"{KIND_CACHE / 'bin'}:{BIN}:{os.environ['PATH']}"})


if __name__ == "__main__":
    main()
