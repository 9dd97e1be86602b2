"""The `appliance engine …` and `appliance reload` commands (`appliance status` is in
:mod:`appliance.status_cli`, registered here beside reload with the same options).

Every command says what happened in plain words, exits non-zero when it did not happen, and
prints one JSON object instead with ``--json``. Store commands take ``--store DIR`` (default:
the config's ``[listen] store``) so tests and technicians can point anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.config import Config, load_config


def _config(args: argparse.Namespace) -> Config:
    config, problems = load_config(Path(args.config) if args.config else None)
    for p in problems:  # said, then the defaults for those keys are used, as the daemon does
        print(f"config: {p}", file=sys.stderr)
    return config


def _store(args: argparse.Namespace):
    from dataclasses import replace

    from appliance.service.hotswap import store_policy
    from appliance.store import Store

    config = _config(args)
    policy = store_policy(config)
    if args.trusted_keys:
        policy = replace(policy, trusted_keys=(Path(args.trusted_keys),))
    if getattr(args, "backend", None):
        policy = replace(policy, backend=args.backend)
    return Store(Path(args.store) if args.store else config.listen.store, policy), config


def _emit(args: argparse.Namespace, doc: dict, words: list[str], ok: bool) -> int:
    if args.json:
        print(json.dumps({"ok": ok, **doc}, default=str))
    else:
        for line in words:
            print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _runs_on(record: dict | None) -> str:
    check = (record or {}).get("check") or {}
    if not check:
        return "not yet checked on this device"
    from appliance.listen.engine import why_not_faster

    why = why_not_faster(check.get("not_faster", []))
    return f"runs on {check['label']}" + (f" ({why})" if why else "")


def _signed(record: dict | None) -> str:
    signer = (record or {}).get("signer")
    return f"signed by {signer['name']} (key {signer['key']})" if signer else "unsigned"


def _tell_daemon(args: argparse.Namespace, config: Config, doc: dict, words: list[str]) -> bool:
    """Ask the running show to switch to the new current engine; False when it kept the old."""
    if args.no_reload or config.service.control_socket is None:
        return True
    from appliance.service.control import ControlUnavailable, request

    sock = Path(args.control) if args.control else config.service.control_socket
    try:
        reply = request(sock, "reload", timeout=args.reload_timeout)
    except ControlUnavailable as e:
        doc["daemon"] = {"reached": False, "why": str(e)}
        words.append(f"{e}; a show started later uses the new current engine "
                     "(or: sudo systemctl reload appliance)")
        return True
    doc["daemon"] = {"reached": True, **reply}
    if reply.get("switched"):
        words.append(f"the running show switched to {reply['engine']} ({reply['runs_on']})")
    elif reply.get("ok"):
        words.append(f"the running show: {reply.get('message', 'nothing to switch')}")
    else:
        words.append(f"the running show kept {reply.get('engine')}: {reply.get('error')}")
    return bool(reply.get("ok"))


def _refused(args: argparse.Namespace, store, action: str, e) -> int:
    cur = store.current_id()
    doc = {"action": action, "step": e.step, "error": str(e), "current": cur}
    return _emit(args, doc, [f"appliance: {action} refused at step '{e.step}': {e}",
                             f"the store is unchanged (current engine: {cur or 'none'})"], False)


def _switched(args: argparse.Namespace, config: Config, out, words: list[str]) -> int:
    doc = {"action": out.action, "id": out.id, "current": out.current, "previous": out.previous,
           "changed": out.changed, "notes": out.notes, "record": out.record}
    words += out.notes
    if out.current:
        words.append(f"current engine: {out.current}"
                     + (f" (previous: {out.previous})" if out.previous else ""))
    ok = True
    if out.changed and out.current == out.id:
        ok = _tell_daemon(args, config, doc, words)
    return _emit(args, doc, words, ok)


def cmd_install(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    store, config = _store(args)
    try:
        out = store.install(args.src, activate=not args.no_activate,
                            allow_downgrade=args.allow_downgrade)
    except StoreError as e:
        return _refused(args, store, "install", e)
    words = [f"installed {out.id}: {_signed(out.record)}; {_runs_on(out.record)}"]
    return _switched(args, config, out, words)


def cmd_activate(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    store, config = _store(args)
    try:
        out = store.activate(args.id, allow_downgrade=args.allow_downgrade)
    except StoreError as e:
        return _refused(args, store, "activate", e)
    return _switched(args, config, out, [f"activated {out.id}: {_runs_on(out.record)}"])


def cmd_rollback(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    store, config = _store(args)
    try:
        out = store.rollback()
    except StoreError as e:
        return _refused(args, store, "rollback", e)
    return _switched(args, config, out, [f"rolled back to {out.id}: {_runs_on(out.record)}"])


def cmd_remove(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    store, _config_ = _store(args)
    try:
        out = store.remove(args.id)
    except StoreError as e:
        return _refused(args, store, "remove", e)
    doc = {"action": "remove", "id": out.id, "current": out.current, "previous": out.previous,
           "notes": out.notes}
    return _emit(args, doc, [f"removed {out.id}", *out.notes], True)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def cmd_list(args: argparse.Namespace) -> int:
    store, _config_ = _store(args)
    cleaned = store.try_recover()
    entries = store.entries()
    doc = {"store": str(store.root), "current": store.current_id(),
           "previous": store.previous_id(), "engines": [e.to_dict() for e in entries]}
    if not entries:
        return _emit(args, doc, [f"no engines installed in {store.root} (the daemon installs "
                                 "the shipped engine on its first start)"], True)
    rows = [("", "ID", "LABELS", "CREATED", "SIZE", "SIGNER", "ON THIS DEVICE")]
    for e in entries:
        mark = "*" if e.current else ("<" if e.previous else "")
        here = (f"yes: {e.runs_on}" + (f" ({'; '.join(e.not_faster)})" if e.not_faster else "")
                if e.verified_here else "no (run: appliance engine verify " + e.id + ")")
        rows.append((mark, e.id, ",".join(e.labels), (e.created or "-")[:16].replace("T", " "),
                     _size(e.size), e.signer or "unsigned", e.problem or here))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    words = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]
    words.append("* current   < previous (what `appliance engine rollback` returns to)")
    words += [f"note: {c}" for c in cleaned]
    return _emit(args, doc, words, True)


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    store, _config_ = _store(args)
    try:
        results = store.verify(args.id)
    except StoreError as e:
        return _refused(args, store, "verify", e)
    words = [f"{i}: " + (f"FAILED — {problem}" if problem else f"OK, {_runs_on(rec)}")
             for i, problem, rec in results]
    ok = bool(results) and all(problem is None for _, problem, _ in results)
    doc = {"results": [{"id": i, "ok": p is None, "problem": p, "record": r}
                       for i, p, r in results]}
    return _emit(args, doc, words or [f"no engines installed in {store.root}"], ok)


def cmd_pack(args: argparse.Namespace) -> int:
    from appliance.store import UnpackError, pack
    from appliance.store.signing import read_signature

    try:
        out = pack(Path(args.dir), Path(args.out) if args.out else None)
        signed = read_signature(Path(args.dir)) is not None
    except (UnpackError, OSError) as e:
        return _emit(args, {"error": str(e)}, [f"appliance: {e}"], False)
    words = [f"packed {out}"]
    if not signed:
        words.append("note: the bundle is unsigned; boxes refuse it unless their config allows "
                     "unsigned bundles (sign it first: appliance engine sign DIR --key FILE)")
    return _emit(args, {"tarball": str(out), "signed": signed}, words, True)


def cmd_keygen(args: argparse.Namespace) -> int:
    from appliance.store import SignatureError, generate_keypair
    from appliance.store.signing import read_public_key

    try:
        secret, public = generate_keypair(Path(args.out), args.name)
    except (SignatureError, OSError) as e:
        return _emit(args, {"error": str(e)}, [f"appliance: {e}"], False)
    kid = read_public_key(public).key_id
    return _emit(args, {"secret_key": str(secret), "public_key": str(public), "key": kid}, [
        f"secret key: {secret} (keep it off the boxes and out of any repository)",
        f"public key: {public} (key {kid}; copy it into /etc/appliance/trusted_keys/ on "
        "the boxes that should accept your bundles)"], True)


def cmd_sign(args: argparse.Namespace) -> int:
    from appliance.store import SignatureError, sign_manifest
    from appliance.store.checks import StepError, check_files

    bundle = Path(args.bundle)
    try:
        check_files(bundle)  # never sign a bundle whose files do not match its manifest
        signer = sign_manifest(bundle, Path(args.key))
    except (StepError, SignatureError, OSError) as e:
        return _emit(args, {"error": str(e)}, [f"appliance: not signed: {e}"], False)
    return _emit(args, {"bundle": str(bundle), "key": signer.key_id, "signer": signer.name},
                 [f"signed {bundle} as {signer.name} (key {signer.key_id})"], True)


def cmd_check(args: argparse.Namespace) -> int:
    from appliance.config import default_engine_dir
    from appliance.listen import load_bundle
    from appliance.listen.engine import check_engine, describe_check, open_engine

    bundle = load_bundle(Path(args.dir) if args.dir else default_engine_dir())
    engine = open_engine(bundle, args.backend, precision=args.precision)
    result = check_engine(engine)
    print(json.dumps({"bundle": bundle.label, **result}))
    print(f"{bundle.label} on {engine.backend} {engine.precision.upper()}: "
          f"{describe_check(result)}", file=sys.stderr)
    return 0 if result["passed"] else 1


def cmd_reload(args: argparse.Namespace) -> int:
    from appliance.service.control import ControlUnavailable, request

    config = _config(args)
    sock = Path(args.control) if args.control else config.service.control_socket
    if sock is None:
        return _emit(args, {"error": "no control socket configured"},
                     ["appliance: the config sets no control socket; use "
                      "sudo systemctl reload appliance"], False)
    try:
        reply = request(sock, "reload", timeout=args.reload_timeout)
    except ControlUnavailable as e:
        return _emit(args, {"error": str(e)}, [f"appliance: {e}"], False)
    if reply.get("switched"):
        words = [f"switched to {reply['engine']} ({reply['runs_on']})"]
    elif reply.get("ok"):
        words = [reply.get("message", "nothing to switch")]
    else:
        words = [f"kept {reply.get('engine')}: {reply.get('error')}"]
    return _emit(args, reply, words, bool(reply.get("ok")))


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``engine``, ``status`` and ``reload`` on the top-level parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default /etc/appliance/appliance.toml)")
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    store = argparse.ArgumentParser(add_help=False, parents=[common])
    store.add_argument("--store", help="engine store folder (default: the config's "
                                       "[listen] store, /var/lib/appliance/engines)")
    store.add_argument("--trusted-keys", help="folder of trusted *.pub keys (default: the "
                                              "config's, /etc/appliance/trusted_keys)")
    store.add_argument("--backend", choices=["auto", "tensorrt", "onnxruntime"],
                       help="backend for the device check (default: the config's)")
    daemon = argparse.ArgumentParser(add_help=False)
    daemon.add_argument("--control", help="the daemon's control socket (default: the config's)")
    daemon.add_argument("--reload-timeout", type=float, default=600.0,
                        help="seconds to wait for the running show to switch")
    switch = argparse.ArgumentParser(add_help=False, parents=[store, daemon])
    switch.add_argument("--no-reload", action="store_true",
                        help="do not ask the running show to switch now")

    e = sub.add_parser("engine", help="engine bundles: install, switch, roll back, sign")
    es = e.add_subparsers(dest="engine_command", required=True)
    c = es.add_parser("install", parents=[switch],
                      help="install a bundle (folder, .tar/.tar.gz, or - for stdin) and make "
                           "it current")
    c.add_argument("src")
    c.add_argument("--no-activate", action="store_true", help="install only; keep current")
    c.add_argument("--allow-downgrade", action="store_true",
                   help="accept a version older than the current engine")
    c.set_defaults(func=cmd_install)
    c = es.add_parser("list", parents=[store], help="installed engines; which is current")
    c.set_defaults(func=cmd_list)
    c = es.add_parser("activate", parents=[switch], help="make an installed engine current")
    c.add_argument("id")
    c.add_argument("--allow-downgrade", action="store_true")
    c.set_defaults(func=cmd_activate)
    c = es.add_parser("rollback", parents=[switch], help="go back to the previous engine")
    c.set_defaults(func=cmd_rollback)
    c = es.add_parser("verify", parents=[store],
                      help="check installed engines again, test vectors included")
    c.add_argument("id", nargs="?")
    c.set_defaults(func=cmd_verify)
    c = es.add_parser("remove", parents=[store], help="delete an installed engine (never the "
                                                      "current one)")
    c.add_argument("id")
    c.set_defaults(func=cmd_remove)
    c = es.add_parser("pack", parents=[common], help="make NAME-VERSION.tar.gz of a bundle")
    c.add_argument("dir")
    c.add_argument("--out", help="tarball path (default ./NAME-VERSION.tar.gz)")
    c.set_defaults(func=cmd_pack)
    c = es.add_parser("keygen", parents=[common], help="make an ed25519 signing key pair")
    c.add_argument("--out", required=True, help="folder for NAME.key and NAME.pub")
    c.add_argument("--name", default="signer", help="who signs (shown by engine list)")
    c.set_defaults(func=cmd_keygen)
    c = es.add_parser("sign", parents=[common], help="sign a bundle's manifest")
    c.add_argument("bundle")
    c.add_argument("--key", required=True, help="the secret key file (NAME.key)")
    c.set_defaults(func=cmd_sign)
    c = es.add_parser("check", help="run a bundle's test vectors on this machine's backend")
    c.add_argument("dir", nargs="?")
    c.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    c.add_argument("--precision", default="int8", choices=["int8", "fp32"],
                   help="ONNX Runtime's model (TensorRT always builds the INT8 one)")
    c.set_defaults(func=cmd_check)

    from appliance.calibrate_cli import add_command as add_calibrate
    from appliance.listen_cli import add_command as add_listen
    from appliance.selftest_cli import add_command as add_selftest
    from appliance.status_cli import add_command as add_status

    add_status(sub, [common, daemon])
    add_listen(sub, [common, daemon])
    add_selftest(sub, [common, daemon])
    add_calibrate(sub, switch, store)
    c = sub.add_parser("reload", parents=[common, daemon],
                       help="ask the running show to switch to the store's current engine")
    c.set_defaults(func=cmd_reload)
