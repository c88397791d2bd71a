#!/usr/bin/python3
"""Checks raftkv's etcd API protos (etcdapi/) against the ones compiled into
Debian's etcdctl 3.4, field by field: every message, enum value, field (name,
number, type, label, oneof), service and method etcdctl knows must exist in
ours with the same wire meaning. Go binaries carry their protos' descriptors
gzipped; this finds them by parsing every gzip stream in the binary.

usage: wire_compat.py OURS_DESCRIPTOR_SET [ETCDCTL_BINARY]
Exit 0: compatible; 1: a difference (each printed); 77: etcdctl missing.
"""
import os
import re
import sys
import zlib

from google.protobuf import descriptor_pb2

PACKAGES = ("etcdserverpb", "mvccpb", "authpb")
# Messages of etcd's API file used only between etcd members.
INTERNAL = {"etcdserverpb.LeaseCheckpoint", "etcdserverpb.LeaseCheckpointRequest",
            "etcdserverpb.LeaseCheckpointResponse"}


def etcd_files(binary):
    data = open(binary, "rb").read()
    files = {}
    for m in re.finditer(b"\x1f\x8b\x08", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                data[m.start():m.start() + (1 << 20)])
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
        except Exception:  # not a descriptor
            continue
        if fd.package in PACKAGES and fd.message_type:
            files[fd.name] = fd
    return files


def flatten(files):
    """{full name: message or enum descriptor}, {service name: service}."""
    types, services = {}, {}

    def add(prefix, msg):
        name = prefix + "." + msg.name
        types[name] = msg
        for e in msg.enum_type:
            types[name + "." + e.name] = e
        for n in msg.nested_type:
            add(name, n)

    for fd in files:
        for e in fd.enum_type:
            types[fd.package + "." + e.name] = e
        for m in fd.message_type:
            add(fd.package, m)
        for s in fd.service:
            services[fd.package + "." + s.name] = s
    return types, services


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    binary = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/etcdctl"
    if not os.path.exists(binary):
        print("skip: %s not installed" % binary)
        return 77
    theirs = etcd_files(binary)
    if "rpc.proto" not in theirs:
        print("FAIL: no etcdserverpb descriptor found in %s" % binary)
        return 1
    ours_set = descriptor_pb2.FileDescriptorSet()
    ours_set.ParseFromString(open(sys.argv[1], "rb").read())
    our_types, our_services = flatten(ours_set.file)
    # etcd's public API files (its others are between members only).
    their_types, their_services = flatten(
        fd for name, fd in theirs.items()
        if name in ("rpc.proto", "kv.proto", "auth.proto"))

    errors = []
    checked = 0
    for name, t in sorted(their_types.items()):
        if name in INTERNAL:
            continue
        o = our_types.get(name)
        if o is None:
            errors.append("missing %s" % name)
            continue
        if isinstance(t, descriptor_pb2.EnumDescriptorProto):
            want = {(v.name, v.number) for v in t.value}
            have = {(v.name, v.number) for v in o.value}
            if want - have:
                errors.append("enum %s lacks %s" % (name, sorted(want - have)))
            checked += 1
            continue
        ours_by_number = {f.number: f for f in o.field}
        for f in t.field:
            checked += 1
            g = ours_by_number.get(f.number)
            if g is None:
                errors.append("%s: no field %d (%s)" % (name, f.number, f.name))
                continue
            oneof_t = t.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else ""
            oneof_o = o.oneof_decl[g.oneof_index].name if g.HasField("oneof_index") else ""
            if (g.name, g.type, g.label, g.type_name, oneof_o) != (
                    f.name, f.type, f.label, f.type_name, oneof_t):
                errors.append("%s.%s = %d: ours is %s %s %s oneof=%s" % (
                    name, f.name, f.number, g.name, g.type, g.type_name, oneof_o))
    for name, s in sorted(their_services.items()):
        o = our_services.get(name)
        if o is None:
            errors.append("missing service %s" % name)
            continue
        ours = {m.name: m for m in o.method}
        for m in s.method:
            checked += 1
            g = ours.get(m.name)
            sig = lambda x: (x.input_type, x.output_type, x.client_streaming,
                             x.server_streaming)
            if g is None or sig(g) != sig(m):
                errors.append("%s/%s differs or is missing" % (name, m.name))
    for e in errors:
        print("FAIL: " + e)
    print("%d fields, enums and methods checked against %s: %d differences" %
          (checked, binary, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
