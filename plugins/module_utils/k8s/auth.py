# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Where a module's cluster and credentials come from, as the official `kubernetes` client reads them.

The options are kubernetes.core's (same names, aliases, types and K8S_AUTH_* variables), so one module_defaults
block or one environment configures both collections. Precedence, as in kubernetes.core: an option, then its
K8S_AUTH_* variable; `host` with a token, a user and password, or a client certificate needs no kubeconfig;
otherwise the kubeconfig (the option, else KUBECONFIG's files merged as kubectl merges them, else
~/.kube/config), and the pod's service account when there is none. Every credential kind the official client
knows works: client certificates, token and tokenFile, exec plugins (refreshed when they expire), the oidc,
gcp and azure auth-providers, basic auth, and the kubeconfig's proxy-url and tls-server-name.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from urllib.parse import urlsplit

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

PROXY_HEADERS_SPEC = {
    "proxy_basic_auth": {"type": "str", "no_log": True},
    "basic_auth": {"type": "str", "no_log": True},
    "user_agent": {"type": "str"},
}
AUTH_ARG_SPEC = {
    # A path or the kubeconfig as a mapping. Not no_log (kubernetes.core's is): that would mask every path in
    # every message. On the controller the action plugin hands a mapping over as a private file instead.
    "kubeconfig": {"type": "raw"},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    "client_key": {"type": "path", "aliases": ["key_file"]},
    "proxy": {"type": "str"},
    "no_proxy": {"type": "str"},
    "proxy_headers": {"type": "dict", "options": PROXY_HEADERS_SPEC},
    "persist_config": {"type": "bool"},
    "impersonate_user": {"type": "str"},
    "impersonate_groups": {"type": "list", "elements": "str"},
}
# option -> the kubernetes client's name for it, also read as K8S_AUTH_<NAME> (kubernetes.core reads both)
CLIENT_NAMES = {"validate_certs": "verify_ssl", "ca_cert": "ssl_ca_cert", "client_cert": "cert_file",
                "client_key": "key_file"}
BOOLS = ("validate_certs", "persist_config")


def options(params, environ=None):
    """The auth options of a module call: each set option, else its K8S_AUTH_* variable."""
    environ = os.environ if environ is None else environ
    out = {}
    for name in AUTH_ARG_SPEC:
        value = params.get(name)
        if value is None and name == "proxy_headers":
            value = {k: environ["K8S_AUTH_PROXY_HEADERS_" + k.upper()] for k in PROXY_HEADERS_SPEC
                     if environ.get("K8S_AUTH_PROXY_HEADERS_" + k.upper())} or None
        elif value is None:
            value = environ.get("K8S_AUTH_" + name.upper()) or environ.get(
                "K8S_AUTH_" + CLIENT_NAMES.get(name, name).upper())
            if value is not None and name in BOOLS:
                value = value.lower() not in ("0", "false", "no")
            if value is not None and name == "impersonate_groups":
                value = [g for g in value.split(",") if g]
        if value not in (None, "", [], {}):
            out[name] = value
    return out


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage()[:300])


class Access:
    """The official client's Configuration for one module call, plus what it does not carry: the
    impersonation headers, where it came from (for messages), and whether credentials can be re-read."""

    def __init__(self, configuration, headers, source, refreshable):
        self.configuration, self.headers, self.source, self.refreshable = configuration, headers, source, refreshable

    def token(self):
        """The Authorization header's value (bearer token or basic auth), after the configuration's refresh
        hook ran: Configuration.auth_settings(), whatever key the client's release keeps it under."""
        return self.configuration.auth_settings().get("BearerToken", {}).get("value")


def _kubeconfig_files(opts, environ):
    if isinstance(opts.get("kubeconfig"), str):
        return os.path.expanduser(opts["kubeconfig"])
    return environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def _is_loopback(url):
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(params, environ=None):
    """An Access for these module options; K8sError saying what is missing or wrong."""
    import urllib3
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    environ = os.environ if environ is None else environ
    opts = options(params, environ)
    configuration = kclient.Configuration()
    host = (opts.get("host") or "").rstrip("/")
    explicit = host and (opts.get("api_key") or (opts.get("username") and opts.get("password"))
                         or (opts.get("client_cert") and opts.get("client_key")))
    proxy_url, refreshable, source = None, False, "host %s" % host
    if not explicit:
        in_cluster = (not opts.get("kubeconfig") and not opts.get("context") and not environ.get("KUBECONFIG")
                      and not os.path.exists(os.path.expanduser("~/.kube/config"))
                      and environ.get("KUBERNETES_SERVICE_HOST"))
        if in_cluster:
            kconfig.load_incluster_config(client_configuration=configuration)
            source, refreshable = "the pod's service account", True
        else:
            proxy_url, refreshable, source = _load_kubeconfig(opts, environ, configuration, kconfig)
    if host:
        configuration.host = host
    if opts.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + opts["api_key"]}
        configuration.refresh_api_key_hook = None
    elif opts.get("username") and opts.get("password"):
        configuration.api_key = {"authorization": urllib3.util.make_headers(
            basic_auth="%s:%s" % (opts["username"], opts["password"]))["authorization"]}
        configuration.refresh_api_key_hook = None
    for name, attr in CLIENT_NAMES.items():
        if name in opts:
            setattr(configuration, attr, opts[name])
    # The proxy: the option, the kubeconfig's proxy-url, else HTTPS_PROXY as kubectl reads it (never for a
    # server on loopback), with NO_PROXY.
    configuration.proxy = opts.get("proxy") or proxy_url
    if not configuration.proxy and not _is_loopback(configuration.host):
        configuration.proxy = environ.get("HTTPS_PROXY") or environ.get("https_proxy")
    configuration.no_proxy = opts.get("no_proxy") or environ.get("NO_PROXY") or environ.get("no_proxy")
    if opts.get("proxy_headers"):
        configuration.proxy_headers = urllib3.util.make_headers(**opts["proxy_headers"])
    configuration.retries = False  # the transport decides what to resend (client.Transport)
    if not configuration.host or configuration.host == "http://localhost":
        raise K8sError("no Kubernetes API server: %s names none" % source)
    headers = urllib3.HTTPHeaderDict()
    if opts.get("impersonate_user"):
        headers["Impersonate-User"] = opts["impersonate_user"]
    for group in opts.get("impersonate_groups") or []:
        headers.add("Impersonate-Group", group)
    return Access(configuration, headers, source, refreshable)


def _load_kubeconfig(opts, environ, configuration, kconfig):
    """Load the kubeconfig into configuration with the official client's public loaders (load_kube_config,
    load_kube_config_from_dict); (proxy-url, refreshable, source)."""
    raw = opts.get("kubeconfig")
    if isinstance(raw, dict):
        docs, files, found, source = [raw], None, 0, "the kubeconfig given as a mapping"
    else:
        files = _kubeconfig_files(opts, environ)
        docs, found = _read_kubeconfigs(files)
        if not docs:
            raise K8sError("no kubeconfig at %s: set kubeconfig (or wide_ep_kubeconfig), K8S_AUTH_KUBECONFIG or "
                           "KUBECONFIG, or run in a pod with a service account" % files)
        source = "kubeconfig %s" % files
    # kubectl takes current-context from the first file that sets it (the official merger: the last)
    context = opts.get("context") or next((d["current-context"] for d in docs if d.get("current-context")), None)
    entry = _named(docs, "contexts", context)
    cluster = _named(docs, "clusters", entry.get("cluster"))
    user = _named(docs, "users", entry.get("user"))
    errors = _Collect()  # the official loader logs, not raises, a failing exec plugin
    logging.getLogger().addHandler(errors)
    try:
        if files is None:
            kconfig.load_kube_config_from_dict(raw, context=context, client_configuration=configuration,
                                               persist_config=False)
        elif entry and _location_free(found, docs, opts, cluster, user):   # no context: the file loader says so
            # The document already read (libyaml: 0.1 ms, where the file loader's pure-Python parse takes
            # 1.6 ms for a 6 KB kubeconfig and ~30 ms for 100 KB, in every task)
            kconfig.load_kube_config_from_dict(docs[0], context=context, client_configuration=configuration,
                                               persist_config=False)
        else:  # KUBECONFIG's list, merged as kubectl merges it; missing files skipped
            kconfig.load_kube_config(config_file=files, context=context, client_configuration=configuration,
                                     persist_config=bool(opts.get("persist_config")))
    except kconfig.ConfigException as exc:
        raise K8sError("%s: %s" % (source, exc)) from None
    finally:
        logging.getLogger().removeHandler(errors)
    source += ", context %s" % context
    if "exec" in user and not configuration.api_key and not configuration.cert_file:
        raise K8sError("%s: the credential plugin %s gave no credentials: %s" % (
            source, user["exec"].get("command"), "; ".join(errors.messages) or "no token or certificate"))
    refreshable = bool(user) and ("exec" in user or "auth-provider" in user or "tokenFile" in user)
    return cluster.get("proxy-url"), refreshable, source


# The credentials the official loader resolves against the kubeconfig's folder (a relative path, the folder an
# exec plugin runs in) or writes back to the file (persist_config: refreshed auth-provider tokens).
_FILE_KEYS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key", "tokenFile")}


def _location_free(found, docs, opts, cluster, user):
    """True when one kubeconfig file (`found`: how many of the listed paths exist) says everything its context
    (`cluster`, `user`) needs with nothing that depends on where the file is: no relative path, no exec plugin
    or auth-provider, no persist_config, and no name defined twice (the file loader keeps the first, the mapping
    loader refuses). Loading its parsed mapping is then the same as loading the file."""
    if found != 1 or len(docs) != 1 or opts.get("persist_config"):
        return False
    for section in ("contexts", "clusters", "users"):
        names = [item.get("name") for item in docs[0].get(section) or [] if isinstance(item, dict)]
        if len(names) != len(set(names)):
            return False
    if "exec" in user or "auth-provider" in user:
        return False
    sections = {"clusters": cluster, "users": user}
    return not any(isinstance(sections[section].get(key), str) and not os.path.isabs(sections[section][key])
                   for section, keys in _FILE_KEYS.items() for key in keys)


def _read_kubeconfigs(files):
    """(the mapping of each kubeconfig file in a KUBECONFIG-style list that exists, in order; how many of the
    listed paths exist, read or not)."""
    docs, found = [], 0
    for path in files.split(os.pathsep):
        try:
            with open(os.path.expanduser(path)) as fh:
                doc = yamlout.safe_load(fh)
        except FileNotFoundError:
            continue
        except OSError:   # there, but no file to read (a folder, no permission): the file loader says so
            found += 1
            continue
        except yamlout.YAMLError as exc:
            raise K8sError("kubeconfig %s is not YAML: %s" % (path, str(exc).splitlines()[0])) from None
        found += 1
        if isinstance(doc, dict):
            docs.append(doc)
    return docs, found


def _named(docs, section, name):
    """The first entry called name of a section (contexts, clusters, users) over the files, as kubectl
    merges them: the first file to define a name wins."""
    for doc in docs:
        for item in doc.get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
    return {}
