"""Chart checks that need Python: every rendered object validated strictly against the
Kubernetes 1.30 and newest schemas (kubernetes-validate); the PrometheusRule (alerts complete,
metrics documented in docs/metrics.md and limited to the release, runbook links to sections of
docs/troubleshooting.md); the example ValidatingAdmissionPolicies in deploy/policies (valid,
bound, CEL naming only KafkaTopic fields, evaluated with cel-python on
deploy/policies/tests/cases.yaml); docs/configuration.md covering every env var and chart value.

Usage: chart_validate.py RENDER_DIR RELEASE NAMESPACE (called by .ci/chart-check, which renders
the chart into RENDER_DIR/<scenario>.yaml). Object-level chart policies are in
tests/chart_render.rs.
"""
import os
import re
import sys

import yaml
import kubernetes_validate
from kubernetes_validate import utils as kv

import celpy  # cel-python: evaluates the admission policies' CEL on sample requests

out, release, namespace = sys.argv[1:4]
failures = []


def fail(scenario, msg):
    failures.append(f"[{scenario}] {msg}")


def load(scenario):
    with open(os.path.join(out, scenario + ".yaml")) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# Kinds without a schema in kubernetes-validate: checked structurally below instead.
NO_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
K8S_VERSIONS = ["1.30.0", kv.latest_version()]


def validate(scenario, docs):
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        name = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kv.SchemaNotFoundError:
                if key not in NO_SCHEMA:
                    fail(scenario, f"{name}: no schema for {key} in Kubernetes {version}")
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                fail(scenario, f"{name} is invalid for Kubernetes {version}: {path}: {e.message}")


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


# Metric names docs/metrics.md documents (without the common prefix), with their types.
PREFIX = "hdinsight_topic_operator_"
DOCUMENTED = dict(re.findall(r"^\| `(\w+)` \| (counter|gauge|histogram) \|", open("docs/metrics.md").read(), re.M))
if not DOCUMENTED:
    raise SystemExit("docs/metrics.md: no metrics table found")
# Series Prometheus itself makes, not the operator: the scrape health of each target.
PROMETHEUS_SERIES = {"up"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OPERATORS = {"and", "or", "unless", "bool", "offset"}


def promql_selectors(expr):
    """(metric name, label matchers) of every vector selector in a PromQL expression.
    Skips strings, label matchers, range and subquery brackets, function names and grouping
    label lists; raises ValueError on unbalanced brackets or quotes."""
    found, i, n = [], 0, len(expr)
    depth = 0
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = expr.find(c, i + 1)
            if j < 0:
                raise ValueError("unterminated string")
            i = j + 1
        elif c in "{[":
            j = expr.find("}" if c == "{" else "]", i)
            if j < 0:
                raise ValueError(f"unclosed {c}")
            i = j + 1
        elif c in "}]":
            raise ValueError(f"unbalanced {c}")
        elif c == "(":
            depth += 1
            i += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced )")
            i += 1
        elif (c.isalpha() or c in "_:") and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_.")):
            word = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr[i:]).group(0)
            j = i + len(word)
            k = j
            while k < n and expr[k].isspace():
                k += 1
            if word in LABEL_LISTS and k < n and expr[k] == "(":
                close = expr.find(")", k)
                if close < 0:
                    raise ValueError(f"unclosed label list after {word}")
                i = close + 1
                continue
            if word in AGGREGATIONS or word in OPERATORS or word in LABEL_LISTS or (k < n and expr[k] == "("):
                i = j
                continue
            matchers = ""
            if k < n and expr[k] == "{":
                matchers = expr[k + 1:expr.find("}", k)]
            found.append((word, matchers))
            i = j
        else:
            i += 1
    if depth:
        raise ValueError("unbalanced (")
    return found


def documented_metric(name):
    if name in PROMETHEUS_SERIES:
        return True
    if not name.startswith(PREFIX):
        return False
    short = name[len(PREFIX):]
    if short in DOCUMENTED:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if short.endswith(suffix) and DOCUMENTED.get(short[:-len(suffix)]) == "histogram":
            return True
    return False


def slug(heading):
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


RUNBOOK_ANCHORS = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", open("docs/troubleshooting.md").read(), re.M)}
EXPECTED_ALERTS = {"KafkaTopicsStalled", "HDInsightAuthenticationFailed", "HDInsightProxyForbidden",
                   "HDInsightProxyThrottling", "HDInsightTokenExpiring", "HDInsightTopicOperatorDown",
                   "HDInsightTopicOperatorNotReconciling"}


def check_prometheus_rule(scenario, docs, values, expected):
    rules = of_kind(docs, "PrometheusRule")
    settings = values.get("metrics", {}).get("prometheusRule", {})
    if expected and not settings.get("enabled"):
        fail(scenario, "the values of this scenario must enable metrics.prometheusRule")
    if not settings.get("enabled"):
        if rules:
            fail(scenario, "PrometheusRule rendered although disabled")
        return
    if len(rules) != 1:
        fail(scenario, f"expected one PrometheusRule, found {len(rules)}")
        return
    pr = rules[0]
    if pr.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(scenario, f"PrometheusRule apiVersion {pr.get('apiVersion')}")
    meta = pr["metadata"]
    for k, v in settings.get("labels", {}).items():
        if meta.get("labels", {}).get(k) != v:
            fail(scenario, f"PrometheusRule lacks the label {k}={v}")
    for k, v in settings.get("annotations", {}).items():
        if meta.get("annotations", {}).get(k) != v:
            fail(scenario, f"PrometheusRule lacks the annotation {k}={v}")
    # Every series must be this release's: by default the job of the metrics Service (the
    # ServiceMonitor's job label) in the release namespace.
    svc = [d["metadata"]["name"] for d in of_kind(docs, "Service")]
    want = settings.get("selector") or (f'job="{svc[0]}",namespace="{namespace}"' if svc else None)
    seen = set()
    for group in pr.get("spec", {}).get("groups", []):
        if not group.get("name"):
            fail(scenario, "a PrometheusRule group has no name")
        for rule in group.get("rules", []):
            name = rule.get("alert")
            where = f"alert {name}"
            if not name or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
                fail(scenario, f"rule without a proper alert name: {rule}")
                continue
            if name in seen:
                fail(scenario, f"{where} is defined twice")
            seen.add(name)
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(scenario, f"{where} has no expr")
                continue
            if not re.fullmatch(r"[0-9]+(ms|s|m|h|d|w|y)", str(rule.get("for", ""))):
                fail(scenario, f"{where} has no valid `for` ({rule.get('for')!r})")
            labels = rule.get("labels") or {}
            if labels.get("severity") not in ("critical", "warning", "info"):
                fail(scenario, f"{where} has severity {labels.get('severity')!r}, expected critical, warning or info")
            for k, v in settings.get("additionalLabels", {}).items():
                if labels.get(k) != v:
                    fail(scenario, f"{where} lacks the additional label {k}={v}")
            ann = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not str(ann.get(key, "")).strip():
                    fail(scenario, f"{where} has no annotations.{key}")
            for key, text in ann.items():
                for t in re.findall(r"\{\{(.*?)\}\}", str(text)):
                    if not re.fullmatch(r"\s*\$(value|labels\.[a-zA-Z_]\w*)\s*", t):
                        fail(scenario, f"{where}: annotations.{key} has the template {{{{{t}}}}}")
            anchor = str(ann.get("runbook_url", "")).partition("#")[2]
            if "troubleshooting.md#" not in str(ann.get("runbook_url", "")) or anchor not in RUNBOOK_ANCHORS:
                fail(scenario, f"{where}: runbook_url {ann.get('runbook_url')!r} is not a section of docs/troubleshooting.md")
            if "docs/troubleshooting.md" not in str(ann.get("description", "")):
                fail(scenario, f"{where}: the description does not point to docs/troubleshooting.md")
            try:
                selectors = promql_selectors(expr)
            except ValueError as e:
                fail(scenario, f"{where}: malformed expr ({e}): {expr}")
                continue
            if not selectors:
                fail(scenario, f"{where}: expr queries no metric: {expr}")
            for metric, matchers in selectors:
                if not documented_metric(metric):
                    fail(scenario, f"{where}: {metric} is not a metric docs/metrics.md documents")
                if want and want not in matchers:
                    fail(scenario, f"{where}: {metric}{{{matchers}}} is not limited to this release ({want})")
    if seen != EXPECTED_ALERTS:
        fail(scenario, f"alerts {sorted(seen)}, expected {sorted(EXPECTED_ALERTS)}")


with open("charts/hdinsight-topic-operator/ci/all-values.yaml") as f:
    ALL_VALUES = yaml.safe_load(f)
# The renders .ci/chart-check wrote; tests/chart_render.rs checks the same value sets object by
# object (typed, RBAC, security context, ...). Here: the Kubernetes schemas and the PrometheusRule.
scenarios = {
    "defaults": {}, "watch-namespaces": {}, "proxy-namespaces": {}, "network-policy": {},
    "service-monitor": {}, "no-crds": {}, "single-replica": {},
    "all-values": dict(values=ALL_VALUES, rule=True),
}
for scenario, want in scenarios.items():
    docs = load(scenario)
    validate(scenario, docs)
    check_prometheus_rule(scenario, docs, want.get("values", {}), want.get("rule", False))
    print(f"validated {scenario}: {len(docs)} objects")

# The example admission policies in deploy/policies: valid objects, each policy bound and
# denying, aimed at KafkaTopics, and CEL that names only fields the KafkaTopic schema has (a
# misspelt field is no error for the API server: has() is just false and the policy lets
# everything through).
def kafkatopic_schema():
    with open("crds/kafkatopics.yaml") as f:
        crd = next(d for d in yaml.safe_load_all(f) if d)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def unescape(name):
    m = re.fullmatch(r"__([a-z]+)__", name)
    if m:
        return m.group(1)  # a CEL reserved word such as namespace
    return name.replace("__dash__", "-").replace("__dot__", ".").replace("__slash__", "/").replace("__underscores__", "__")


def cel_expressions(policy):
    spec = policy["spec"]
    for v in spec.get("variables", []):
        yield f"variables.{v['name']}", v["expression"]
    for i, v in enumerate(spec.get("validations", [])):
        yield f"validations[{i}].expression", v["expression"]
        if v.get("messageExpression"):
            yield f"validations[{i}].messageExpression", v["messageExpression"]
    for c in spec.get("matchConditions", []):
        yield f"matchConditions.{c['name']}", c["expression"]
    for a in spec.get("auditAnnotations", []):
        yield f"auditAnnotations.{a['key']}", a["valueExpression"]


def check_policies():
    where = "deploy/policies"
    schema = kafkatopic_schema()
    files = sorted(f for f in os.listdir(where) if f.endswith(".yaml"))
    if not files:
        fail(where, "no policies")
    readme = open(os.path.join(where, "README.md")).read()
    policies, bindings = {}, []
    for f in files:
        if f not in readme:
            fail(where, f"README.md does not describe {f}")
        with open(os.path.join(where, f)) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d]
        validate(f"{where}/{f}", docs)
        for d in docs:
            if d.get("apiVersion") != "admissionregistration.k8s.io/v1":
                fail(f, f"{d.get('kind')} uses {d.get('apiVersion')}, expected admissionregistration.k8s.io/v1")
            if d["kind"] == "ValidatingAdmissionPolicy":
                policies[d["metadata"]["name"]] = (f, d)
            elif d["kind"] == "ValidatingAdmissionPolicyBinding":
                bindings.append((f, d))
            else:
                fail(f, f"unexpected {d['kind']}")
    for f, b in bindings:
        name = b["spec"].get("policyName")
        if name not in policies:
            fail(f, f"binding {b['metadata']['name']} names no policy of {where} ({name})")
        if "Deny" not in b["spec"].get("validationActions", []):
            fail(f, f"binding {b['metadata']['name']} does not deny")
    for name, (f, p) in policies.items():
        if not any(b["spec"].get("policyName") == name for _, b in bindings):
            fail(f, f"policy {name} has no binding, so it does nothing")
        spec = p["spec"]
        if spec.get("failurePolicy") != "Fail":
            fail(f, f"policy {name}: failurePolicy must be Fail")
        for rule in spec["matchConstraints"]["resourceRules"]:
            if rule.get("apiGroups") != ["kafka.hdinsight.dev"] or rule.get("resources") != ["kafkatopics"]:
                fail(f, f"policy {name} matches {rule.get('apiGroups')}/{rule.get('resources')}, expected kafka.hdinsight.dev/kafkatopics")
        if not spec.get("validations"):
            fail(f, f"policy {name} has no validations")
        defined = [v["name"] for v in spec.get("variables", [])]
        for label, expr in cel_expressions(p):
            text = re.sub(r"'[^']*'", "''", expr)  # string literals hold label keys, not fields
            if text.count("(") != text.count(")") or text.count("[") != text.count("]") or expr.count("'") % 2:
                fail(f, f"policy {name} {label}: unbalanced brackets or quotes")
            for var in re.findall(r"\bvariables\.(\w+)", text):
                if var not in defined:
                    fail(f, f"policy {name} {label}: variables.{var} is not defined")
                elif label.startswith("variables.") and defined.index(var) >= defined.index(label.split(".", 1)[1]):
                    fail(f, f"policy {name} {label}: variables.{var} is defined later")
            for root, path in re.findall(r"\b(object|oldObject)((?:\.\w+)+)", text):
                node, walked = {"properties": {"spec": schema["properties"]["spec"], "metadata": {"type": "object"}}}, root
                for field in path.strip(".").split("."):
                    walked += "." + field
                    if node.get("type") == "object" and "properties" not in node and walked.startswith(root + ".metadata"):
                        break  # ObjectMeta: not part of the CRD schema
                    props = node.get("properties")
                    if props is None or unescape(field) not in props:
                        fail(f, f"policy {name} {label}: {walked} is not a KafkaTopic field (crds/kafkatopics.yaml)")
                        break
                    node = props[unescape(field)]


CEL_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                "function", "if", "import", "let", "loop", "package", "namespace", "return"}


def escape_fields(value, maps=("config",)):
    """Property names as CEL sees them in the API server (namespace -> __namespace__, ...);
    the keys of free-form maps such as spec.config stay as they are."""
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in CEL_RESERVED:
            e = f"__{k}__"
        else:
            e = k.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")
        out[e] = v if k in maps else escape_fields(v, maps)
    return out


def selects(selector, labels):
    for k, v in (selector or {}).get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in (selector or {}).get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "Exists" and key not in labels or op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in values or op == "NotIn" and labels.get(key) in values:
            return False
    return True


def admit(policy, binding, case):
    """None if the request is admitted, else the refusal message. Raises on an evaluation error
    (which failurePolicy Fail turns into a refusal nobody meant)."""
    ns, op = "team-a", case.get("operation", "CREATE")
    labels = case.get("namespaceLabels") or {}
    spec = policy["spec"]
    if not any(op in r["operations"] or "*" in r["operations"] for r in spec["matchConstraints"]["resourceRules"]):
        return None
    if not selects(binding["spec"].get("matchResources", {}).get("namespaceSelector"), labels):
        return None
    obj = {"apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
           "metadata": {"name": "orders", "namespace": ns}, "spec": escape_fields(case.get("spec") or {})}
    ns_meta = {"name": ns, **({"labels": labels} if labels else {})}
    data = {"object": obj, "oldObject": obj if op == "UPDATE" else None,
            "request": {"operation": op, "namespace": ns, "name": "orders"},
            "namespaceObject": {"apiVersion": "v1", "kind": "Namespace", "metadata": ns_meta}}
    env = celpy.Environment()

    def evaluate(expr, variables):
        activation = {k: celpy.json_to_cel(v) for k, v in data.items()}
        # Built directly: json_to_cel would turn the BoolType values of variables into ints.
        activation["variables"] = celpy.celtypes.MapType({celpy.celtypes.StringType(k): v for k, v in variables.items()})
        result = env.program(env.compile(expr)).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise ValueError(f"{expr}: {result}")
        return result

    variables = {}
    for v in spec.get("variables", []):
        variables[v["name"]] = evaluate(v["expression"], variables)
    for v in spec["validations"]:
        verdict = evaluate(v["expression"], variables)
        if not isinstance(verdict, celpy.celtypes.BoolType):
            raise ValueError(f"{v['expression']}: {verdict!r} is not a bool")
        if not verdict:
            if v.get("messageExpression"):
                return str(evaluate(v["messageExpression"], variables))
            return v.get("message", "refused")
    return None


def check_policy_cases():
    where = "deploy/policies"
    docs = []
    for f in sorted(os.listdir(where)):
        if f.endswith(".yaml"):
            with open(os.path.join(where, f)) as fh:
                docs += [d for d in yaml.safe_load_all(fh) if d]
    with open(os.path.join(where, "tests", "cases.yaml")) as fh:
        suites = yaml.safe_load(fh)
    tested = set()
    for suite in suites:
        name = suite["policy"]
        tested.add(name)
        policy = next((d for d in docs if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == name), None)
        binding = next((d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding" and d["spec"]["policyName"] == name), None)
        if policy is None or binding is None:
            fail(where, f"tests/cases.yaml: no policy and binding named {name}")
            continue
        for case in suite["cases"]:
            label = f"{name}: {case['name']}"
            try:
                refused = admit(policy, binding, case)
            except Exception as e:  # an evaluation error: the API server would refuse with failurePolicy Fail
                fail(where, f"{label}: CEL evaluation error {e}")
                continue
            if case.get("allow"):
                if refused is not None:
                    fail(where, f"{label}: refused ({refused}), expected admitted")
            elif refused is None:
                fail(where, f"{label}: admitted, expected refused")
            elif case["deny"] not in refused:
                fail(where, f"{label}: refused with {refused!r}, expected a message containing {case['deny']!r}")
        print(f"evaluated {name}: {len(suite['cases'])} cases")
    for d in docs:
        if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] not in tested:
            fail(where, f"tests/cases.yaml has no cases for {d['metadata']['name']}")


check_policies()
check_policy_cases()

# The configuration reference must mention every environment variable and every chart value.
doc = open("docs/configuration.md").read()
for env in sorted(set(re.findall(r'env = "(HDI_[A-Z_]+)"', open("src/cli.rs").read()))):
    if f"`{env}`" not in doc:
        fail("docs", f"docs/configuration.md does not document {env}")


def value_paths(values, prefix=""):
    # Leaves only; maps of Kubernetes objects (resources, securityContext, …) count as leaves.
    for k, v in values.items():
        path = prefix + k
        if isinstance(v, dict) and v and k not in ("resources", "podSecurityContext", "securityContext",
                                                    "livenessProbe", "readinessProbe"):
            yield from value_paths(v, path + ".")
        else:
            yield path


with open("charts/hdinsight-topic-operator/values.yaml") as f:
    for path in value_paths(yaml.safe_load(f)):
        parent, _, leaf = path.rpartition(".")
        # Rows may list siblings as `a.b.c`, `.d`, `.e`.
        if f"`{path}`" not in doc and not (parent and f"`.{leaf}`" in doc and f"`{parent}." in doc):
            fail("docs", f"docs/configuration.md does not document the chart value {path}")

if failures:
    print("\n".join(failures), file=sys.stderr)
    raise SystemExit(f"{len(failures)} chart check(s) failed")
