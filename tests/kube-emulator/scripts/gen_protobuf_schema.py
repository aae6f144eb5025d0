#!/usr/bin/env python3
"""Generates src/server/protobuf_schema.rs: field numbers and JSON names of the Kubernetes
protobuf messages the emulator decodes (kubectl's and helm's typed clients send protobuf).

Field numbers and wire types come from the prost code of the `k8s-pb` crate; JSON names
come from `k8s-openapi` (matched by name with case and underscores ignored).

Usage: gen_protobuf_schema.py K8S_PB_SRC K8S_OPENAPI_VERSION_SRC > src/server/protobuf_schema.rs
  e.g. ~/.cargo/registry/src/*/k8s-pb-0.9.0/src ~/.cargo/registry/src/*/k8s-openapi-0.29.0/src/v1_36
"""
import os
import re
import sys

MODULES = [
    "api/core/v1", "api/apps/v1", "api/batch/v1", "api/coordination/v1", "api/rbac/v1",
    "api/networking/v1", "api/policy/v1", "api/authorization/v1", "api/authentication/v1",
    "api/events/v1", "api/autoscaling/v1", "apiextensions_apiserver/pkg/apis/apiextensions/v1",
    "apimachinery/pkg/apis/meta/v1", "apimachinery/pkg/runtime", "apimachinery/pkg/util/intstr",
    "apimachinery/pkg/api/resource",
]

STRUCT_RE = re.compile(r"^pub struct (\w+) \{$")
ATTR_RE = re.compile(r"#\[prost\((.*)\)\]")
FIELD_RE = re.compile(r"^\s*pub (?:r#)?(\w+): (.*),$")


def resolve(module, type_text):
    """Module-qualified message id of a Rust type path relative to `module`."""
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<"):
        if type_text.startswith(wrapper):
            type_text = type_text[len(wrapper):-1]
    if type_text.startswith("::prost::alloc::collections::BTreeMap<") or type_text.startswith("::std::collections::HashMap<"):
        inner = type_text[type_text.index("<") + 1:-1]
        type_text = inner.split(",", 1)[1].strip().rstrip(",")
    parts = type_text.split("::")
    base = module.split("/")
    while parts and parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    path = base + parts[:-1]
    return ".".join(path + [parts[-1]])


def openapi_names(openapi_src, module):
    """type name -> list of JSON field names, from k8s-openapi's Deserialize impls."""
    names = {}
    directory = os.path.join(openapi_src, module)
    if not os.path.isdir(directory):
        return names
    for file_name in os.listdir(directory):
        if not file_name.endswith(".rs") or file_name == "mod.rs":
            continue
        text = open(os.path.join(directory, file_name)).read()
        struct = re.search(r"pub struct (\w+) \{", text)
        if not struct:
            continue
        names[struct.group(1)] = re.findall(r'"(\w+)" => Field::Key_', text)
    return names


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def normalized(name):
    return name.replace("_", "").lower()


def kind_of(attr, module, type_text):
    first = attr.split(",")[0].strip()
    map_match = re.match(r'(?:btree_)?map = "(\w+), (\w+)"', attr)
    if map_match:
        value = map_match.group(2)
        if value == "message":
            return 'Kind::Map(MapValue::Message("%s"))' % resolve(module, type_text)
        return "Kind::Map(MapValue::%s)" % {"string": "String", "bytes": "Bytes"}[value]
    if first == "message":
        return 'Kind::Message("%s")' % resolve(module, type_text)
    if first.startswith("bytes"):
        return "Kind::Bytes"
    return "Kind::%s" % {"string": "String", "bool": "Bool", "int32": "Int32", "int64": "Int64", "double": "Double"}[first]


def main():
    pb_src, openapi_src = sys.argv[1], sys.argv[2]
    messages = []
    parents_known = {}
    camel_names = {}
    for module in MODULES:
        json_names = openapi_names(openapi_src, module)
        lines = open(os.path.join(pb_src, module, "mod.rs")).read().splitlines()
        index = 0
        while index < len(lines):
            match = STRUCT_RE.match(lines[index])
            index += 1
            if not match:
                continue
            name = match.group(1)
            known = {normalized(n): n for n in json_names.get(name, [])}
            parents_known[module.replace("/", ".") + "." + name] = set(known.values())
            fields = []
            attr = None
            while index < len(lines) and lines[index] != "}":
                line = lines[index].strip()
                index += 1
                attr_match = ATTR_RE.match(line)
                if attr_match:
                    attr = attr_match.group(1)
                    continue
                declaration = lines[index - 1]
                if attr and declaration.strip().startswith("pub "):
                    # Long types wrap over several lines; join until the angle brackets balance.
                    while (declaration.count("<") != declaration.count(">") or not declaration.rstrip().endswith(",")) and index < len(lines):
                        declaration += (" " if declaration.endswith(":") else "") + lines[index].strip()
                        index += 1
                    declaration = declaration.replace(",>", ">")
                field_match = FIELD_RE.match(declaration)
                if field_match and attr:
                    rust_name, type_text = field_match.groups()
                    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                    json_name = known.get(normalized(rust_name), camel(rust_name))
                    camel_names[(module.replace("/", ".") + "." + name, tag)] = camel(rust_name)
                    if known and normalized(rust_name) not in known and attr.startswith("message"):
                        # An embedded Go struct: its fields are inlined in JSON.
                        json_name = ""
                    fields.append((tag, json_name, kind_of(attr, module, type_text), "repeated" in attr))
                    attr = None
            messages.append((module.replace("/", ".") + "." + name, fields))
    # A message field whose JSON name is unknown is an embedded Go struct (inlined in JSON)
    # only when the embedded type's own fields are what the parent's JSON has.
    by_name = {name: fields for name, fields in messages}
    fixed = []
    for name, fields in messages:
        out = []
        for tag, json_name, kind, repeated in fields:
            if json_name == "":
                child = re.search(r'"([^"]+)"', kind).group(1)
                child_names = [f[1] for f in by_name.get(child, [])]
                parent_known = parents_known.get(name, set())
                if not any(n in parent_known for n in child_names):
                    json_name = camel_names.get((name, tag), "")
            out.append((tag, json_name, kind, repeated))
        fixed.append((name, out))
    messages = fixed
    messages.sort()
    print("//! Generated by `scripts/gen_protobuf_schema.py` from the k8s-pb and k8s-openapi crates; do not edit.")
    print("//! Field numbers, JSON names and wire kinds of the Kubernetes protobuf messages the emulator decodes.")
    print()
    print("use super::protobuf::{Field, Kind, MapValue, Message};")
    print()
    print("/// Every known message, sorted by name for binary search.")
    print("pub static MESSAGES: &[Message] = &[")
    for name, fields in messages:
        print('    Message {')
        print('        name: "%s",' % name)
        print('        fields: &[')
        for tag, json_name, kind, repeated in fields:
            print('            Field { tag: %d, json: "%s", kind: %s, repeated: %s },' % (tag, json_name, kind, "true" if repeated else "false"))
        print('        ],')
        print('    },')
    print("];")


main()
