#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check Cloister's Terraform modules without a terraform binary.

    terraform/tools/tfcheck.py [ROOT ...]        (default: terraform/gcp terraform/azure terraform/aws)

For every root module and each local module it calls:
  1. every .tf file parses with HashiCorp's HCL parser and is formatted as `terraform fmt` would;
  2. every resource and data type exists in the provider schema subset (schemas/*.json, cut out
     of the prebuilt provider packages by extract-schema); a type outside the subset fails;
  3. every argument and nested block exists there, a block is written as a block and an
     attribute as an attribute, a single block appears at most once, dynamic blocks name a
     block; every required argument and block is set;
  4. every var., local., module., data. and resource reference is declared (a resource's
     attribute must be one it has or computes; a module's output must exist);
  5. module calls pass only the child's variables and all of those without a default;
  6. the root pins each provider to the exact version its schema was generated from.
Errors name the file (or module), the address and the argument. Exit status 1 on any error.

Not covered (a real `terraform validate`/`plan` would): types and enums of values, arguments
that exclude each other, provider-side validation, what the cloud API refuses.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TERRAFORM_DIR = os.path.dirname(HERE)
NODE_MODULES = os.environ.get("CLOISTER_NPM_DIR", "/var/cache/cloister/npm") + "/node_modules"

RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner",
                 "connection"}
LIFECYCLE_KEYS = {"create_before_destroy", "prevent_destroy", "ignore_changes",
                  "replace_triggered_by", "precondition", "postcondition"}
MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}
# Terraform's own resource type (no provider).
BUILTIN = {
    "terraform_data": {
        "attributes": {"input": {"required": False, "type": "any"},
                       "triggers_replace": {"required": False, "type": "any"}},
        "blocks": {},
        "computed": ["id", "input", "output", "triggers_replace"],
    }
}
PROVIDER_PREFIXES = ("google", "azurerm", "aws", "random")


class Schemas:
    def __init__(self, directory=os.path.join(HERE, "schemas")):
        self.by_prefix = {}
        for f in sorted(os.listdir(directory)):
            if f.endswith(".json"):
                with open(os.path.join(directory, f), encoding="utf-8") as fh:
                    s = json.load(fh)
                s["file"] = os.path.join(directory, f)
                self.by_prefix[s["provider"].split("/")[1]] = s

    def lookup(self, section, tftype):
        """(schema node or None, error message or None)."""
        if section == "resource" and tftype in BUILTIN:
            return BUILTIN[tftype], None
        prefix = tftype.split("_", 1)[0]
        s = self.by_prefix.get(prefix)
        if not s:
            return None, "no provider schema for '%s' (schemas/ has %s)" % (
                tftype, ", ".join(sorted(self.by_prefix)))
        node = s[section].get(tftype)
        if not node:
            return None, ("%s type '%s' is not in %s (%s %s, provider %s %s): misspelt, or "
                          "regenerate the subset with terraform/tools/update-schemas" % (
                              section, tftype, os.path.relpath(s["file"], TERRAFORM_DIR),
                              s["package"], s["packageVersion"], s["provider"],
                              s["providerVersion"]))
        return node, None


def parse_files(files):
    """{file: {"json": ..., "formatted": bool} | {"error": str}} from one node process."""
    if not os.path.isdir(NODE_MODULES + "/@cdktf/hcl2json"):
        raise RuntimeError("%s/@cdktf/hcl2json is missing: run scripts/install-deps (it installs "
                           "terraform/tools/package-lock.json there with npm ci)" % NODE_MODULES)
    p = subprocess.run(["node", os.path.join(HERE, "hcl.js"), NODE_MODULES] + list(files),
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("hcl.js failed: " + p.stderr.strip())
    return json.loads(p.stdout)


def tf_files(directory):
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".tf"))


class Module:
    """One module directory, its files merged."""

    def __init__(self, directory, parsed):
        self.dir = directory
        self.variables, self.outputs, self.locals = {}, {}, {}
        self.resources, self.data, self.modules = {}, {}, {}
        self.terraform, self.providers = [], {}
        self.where = {}
        for f in tf_files(directory):
            j = parsed[f].get("json") or {}
            for name, bodies in j.get("variable", {}).items():
                self.variables[name] = bodies[0]
            for name, bodies in j.get("output", {}).items():
                self.outputs[name] = bodies[0]
            for block in j.get("locals", []):
                self.locals.update(block)
            for section, store in (("resource", self.resources), ("data", self.data)):
                for tftype, named in j.get(section, {}).items():
                    for name, bodies in named.items():
                        store[(tftype, name)] = bodies[0]
                        self.where[(section, tftype, name)] = f
            for name, bodies in j.get("module", {}).items():
                self.modules[name] = bodies[0]
                self.where[("module", name)] = f
            self.terraform += j.get("terraform", [])
            for name, bodies in j.get("provider", {}).items():
                self.providers[name] = bodies[0]

    def child_dir(self, name):
        src = self.modules[name].get("source", "")
        if not isinstance(src, str) or not src.startswith("./"):
            return None
        return os.path.normpath(os.path.join(self.dir, src))


def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)


def check_body(body, node, where, errs):
    """Arguments and nested blocks of one resource body (or nested block) against node."""
    attrs, blocks = node.get("attributes", {}), node.get("blocks", {})
    present = set()
    for key, val in body.items():
        if key == "dynamic":
            for bname, dyns in val.items():
                if bname not in blocks:
                    errs.append("%s: dynamic \"%s\": no such block%s" % (
                        where, bname, " (it is an argument)" if bname in attrs else ""))
                    continue
                present.add(bname)
                for d in dyns:
                    unknown = set(d) - {"for_each", "iterator", "labels", "content"}
                    if unknown or "for_each" not in d or "content" not in d:
                        errs.append("%s: dynamic \"%s\": needs for_each and content, has %s" % (
                            where, bname, sorted(d)))
                        continue
                    for c in d["content"]:
                        check_body(c, blocks[bname]["schema"], "%s.%s" % (where, bname), errs)
            continue
        if key in attrs:
            present.add(key)
            t = attrs[key]["type"]
            if (isinstance(val, list) and val and all(isinstance(x, dict) for x in val)
                    and t not in ("list", "any")):
                errs.append("%s: '%s' is an argument (%s = ...), written as a block" % (
                    where, key, key))
            continue
        if key in blocks:
            present.add(key)
            if not (isinstance(val, list) and all(isinstance(x, dict) for x in val)):
                errs.append("%s: '%s' is a block (%s { ... }), written as an argument" % (
                    where, key, key))
                continue
            if not blocks[key]["list"] and len(val) > 1:
                errs.append("%s: block '%s' may appear at most once, appears %d times" % (
                    where, key, len(val)))
            for x in val:
                check_body(x, blocks[key]["schema"], "%s.%s" % (where, key), errs)
            continue
        errs.append("%s: unknown argument '%s'" % (where, key))
    for name, a in attrs.items():
        if a["required"] and name not in present:
            errs.append("%s: missing required argument '%s'" % (where, name))
    for name, b in blocks.items():
        if b["required"] and name not in present:
            errs.append("%s: missing required block '%s'" % (where, name))


REF_VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
REF_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
REF_MODULE = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_]\w*))?")
REF_DATA = re.compile(r"(?<![\w.])data\.(\w+)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.(\w+))?")
REF_RES = re.compile(r"(?<![\w.])((?:%s)_\w+|terraform_data)\.([A-Za-z_][\w-]*)"
                     r"(?:\[[^\]]*\])?(?:\.(\w+))?" % "|".join(PROVIDER_PREFIXES))


def check_refs(m, text, where, schemas, modules, errs):
    if "${" not in text:
        return
    for v in REF_VAR.findall(text):
        if v not in m.variables:
            errs.append("%s: var.%s is not declared" % (where, v))
    for v in REF_LOCAL.findall(text):
        if v not in m.locals:
            errs.append("%s: local.%s is not declared" % (where, v))
    for name, out in REF_MODULE.findall(text):
        if name not in m.modules:
            errs.append("%s: module.%s is not declared" % (where, name))
            continue
        child = modules.get(m.child_dir(name))
        if out and child and out not in child.outputs:
            errs.append("%s: module.%s has no output '%s'" % (where, name, out))
    for tftype, name, attr in REF_DATA.findall(text):
        if (tftype, name) not in m.data:
            errs.append("%s: data.%s.%s is not declared" % (where, tftype, name))
        elif attr:
            node, _ = schemas.lookup("data", tftype)
            if node and not has_attr(node, attr):
                errs.append("%s: data.%s.%s has no attribute '%s'" % (where, tftype, name, attr))
    for tftype, name, attr in REF_RES.findall(text):
        if (tftype, name) not in m.resources:
            errs.append("%s: %s.%s is not declared" % (where, tftype, name))
        elif attr:
            node, _ = schemas.lookup("resource", tftype)
            if node and not has_attr(node, attr):
                errs.append("%s: %s.%s has no attribute '%s'" % (where, tftype, name, attr))


def has_attr(node, attr):
    return (attr in node.get("attributes", {}) or attr in node.get("blocks", {})
            or attr in node.get("computed", []))


def load_modules(roots, parsed):
    """Every module directory reachable from roots: {dir: Module}."""
    modules, todo = {}, list(roots)
    while todo:
        d = todo.pop()
        if d in modules:
            continue
        modules[d] = Module(d, parsed)
        for name in modules[d].modules:
            c = modules[d].child_dir(name)
            if c and os.path.isdir(c):
                todo.append(c)
    return modules


def all_dirs(roots):
    """Module directories by walking the tree (parse everything, even a module not called)."""
    out = []
    for r in roots:
        for d, subdirs, files in os.walk(r):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            if any(f.endswith(".tf") for f in files):
                out.append(d)
    return out


def check(roots, schemas=None, parsed=None):
    """A list of error strings (empty: the modules pass) and the parsed files."""
    schemas = schemas or Schemas()
    roots = [os.path.normpath(os.path.abspath(r)) for r in roots]
    files = [f for d in all_dirs(roots) for f in tf_files(d)]
    parsed = parsed if parsed is not None else parse_files(files)
    errs = []
    rel = lambda p: os.path.relpath(p, TERRAFORM_DIR)
    for f in files:
        if "error" in parsed[f]:
            errs.append("%s: does not parse: %s" % (rel(f), parsed[f]["error"]))
        elif not parsed[f]["formatted"]:
            errs.append("%s: not formatted as `terraform fmt` would" % rel(f))
    if errs:
        return errs, parsed
    modules = load_modules(roots, parsed)
    for d, m in sorted(modules.items()):
        for (tftype, name), body in sorted(m.resources.items()) + [
                (("data." + k[0], k[1]), v) for k, v in sorted(m.data.items())]:
            section = "data" if tftype.startswith("data.") else "resource"
            tft = tftype[5:] if section == "data" else tftype
            where = "%s: %s.%s" % (rel(m.where[(section, tft, name)]), tftype, name)
            node, err = schemas.lookup(section, tft)
            if err:
                errs.append("%s: %s" % (where, err))
                continue
            plain = {k: v for k, v in body.items() if k not in RESOURCE_META}
            for lc in body.get("lifecycle", []):
                for k in set(lc) - LIFECYCLE_KEYS:
                    errs.append("%s.lifecycle: unknown argument '%s'" % (where, k))
            check_body(plain, node, where, errs)
        for name, body in sorted(m.modules.items()):
            where = "%s: module.%s" % (rel(m.where[("module", name)]), name)
            c = m.child_dir(name)
            if not c or c not in modules:
                errs.append("%s: source '%s' is not a local module directory" % (
                    where, body.get("source")))
                continue
            child = modules[c]
            for k in body:
                if k not in MODULE_META and k not in child.variables:
                    errs.append("%s: '%s' is not a variable of %s" % (where, k, rel(c)))
            for v, decl in child.variables.items():
                if "default" not in decl and v not in body:
                    errs.append("%s: missing required variable '%s' of %s" % (where, v, rel(c)))
        for pname, body in sorted(m.providers.items()):
            s = schemas.by_prefix.get(pname)
            if not s or "providerConfig" not in s:
                errs.append("%s: provider \"%s\": no schema for its configuration" % (
                    rel(d), pname))
                continue
            check_body({k: v for k, v in body.items() if k != "alias"}, s["providerConfig"],
                       "%s: provider \"%s\"" % (rel(d), pname), errs)
        where = rel(d)
        for text in strings([m.resources, m.data, m.modules, m.outputs, m.locals,
                             m.providers, m.variables]):
            check_refs(m, text, where, schemas, modules, errs)
    for r in roots:
        errs += check_pins(modules[r], schemas, rel(r))
    return errs, parsed


def check_pins(m, schemas, where):
    errs, pinned = [], {}
    for t in m.terraform:
        for rp in t.get("required_providers", []):
            pinned.update(rp)
    used = {t.split("_", 1)[0] for (t, _) in list(m.resources) + list(m.data)}
    for name, p in pinned.items():
        s = schemas.by_prefix.get(name)
        if not s:
            errs.append("%s: provider '%s' has no schema in terraform/tools/schemas" % (
                where, name))
            continue
        if p.get("source") != s["provider"]:
            errs.append("%s: provider '%s' source is '%s', the schema is of '%s'" % (
                where, name, p.get("source"), s["provider"]))
        if p.get("version") != s["providerVersion"]:
            errs.append("%s: provider '%s' must be pinned to exactly %s (the version its "
                        "schema was generated from), not '%s'" % (
                            where, name, s["providerVersion"], p.get("version")))
    return errs


def main():
    roots = sys.argv[1:] or [os.path.join(TERRAFORM_DIR, c) for c in ("gcp", "azure", "aws")
                             if os.path.isdir(os.path.join(TERRAFORM_DIR, c))]
    try:
        errs, _ = check(roots)
    except RuntimeError as e:
        sys.exit("tfcheck: %s" % e)
    for e in errs:
        print(e)
    print("tfcheck: %s: %s" % (", ".join(os.path.relpath(r, TERRAFORM_DIR) for r in roots),
                               "%d error(s)" % len(errs) if errs else "OK"))
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
