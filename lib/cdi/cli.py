"""The ``cdi`` command line: ``cdi run --conf conf/demo.yaml`` runs everything; one sub-command
per stage and tool. Exit code 0 on success, 2 on a configuration or usage problem, 1 on any
other failure, always with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cdi import schema
from cdi.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CdiError, ConfigError, exit_code, one_line
from cdi.redaction import Redactor, masked_logs

log = logging.getLogger("cdi")


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so that the live progress display, which
    redirects it while a step runs, prints log lines above itself instead of through it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[_CurrentStderrHandler()],
    )
    for noisy in ("py4j", "splink", "matplotlib", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO timestamp: {text!r} (e.g. 2026-11-24T06:00:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"hours must be >= 0, got {text}")
    return value


def _add_conf(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", required=True, help="environment config file, e.g. conf/demo.yaml")


def _add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of a table")


def _add_full(p: argparse.ArgumentParser) -> None:
    p.add_argument("--full", action="store_true",
                   help="compute silver and gold even when nothing changed since the last run that wrote them")


def json_text(data: Any) -> str:
    """``data`` as indented JSON; dates, times and decimals as text (ISO 8601 for dates and times)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        return str(value)

    return json.dumps(data, indent=2, default=plain, ensure_ascii=False)


def _verbosity(suppress: bool) -> argparse.ArgumentParser:
    """-v/-q, accepted before and after the sub-command (``cdi -q run`` and ``cdi run -q``); the
    sub-commands' copies default to SUPPRESS so they never reset what was given before."""
    common = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else False
    group = common.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")
    return common


def build_parser() -> argparse.ArgumentParser:
    from cdi import __version__

    parser = argparse.ArgumentParser(prog="cdi", description="Customer data integration pipeline", parents=[_verbosity(False)])
    parser.add_argument("--version", action="version", version=f"cdi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _verbosity(True)

    p = sub.add_parser("run", parents=[common], help="run every stage: ingest, standardise + link, gold")
    _add_conf(p)
    p.add_argument("--run-id", help="run id to use (default: a new one)")
    p.add_argument("--retrain", action="store_true", help="retrain the linkage model even if one is saved")
    _add_full(p)
    _add_json(p, "the run summary")

    p = sub.add_parser("ingest", parents=[common], help="ingest the sources into bronze Delta tables")
    _add_conf(p)
    p.add_argument("--source", action="append", help="only this source (repeatable)")
    p.add_argument("--run-id")
    _add_json(p, "the run summary")

    p = sub.add_parser("link", parents=[common], help="standardise into silver/records and resolve customers with Splink")
    _add_conf(p)
    p.add_argument("--retrain", action="store_true", help="retrain the linkage model even if one is saved")
    _add_full(p)
    p.add_argument("--run-id")
    _add_json(p, "the run summary")

    p = sub.add_parser("gold", parents=[common], help="golden records, history, change feed and propagation")
    _add_conf(p)
    _add_full(p)
    p.add_argument("--run-id")
    _add_json(p, "the run summary")

    p = sub.add_parser("maintain", parents=[common], help="OPTIMIZE and VACUUM every table; roll back what a dead run left")
    _add_conf(p)
    p.add_argument("--retain-hours", type=_hours, help="history VACUUM keeps (default: storage.vacuum_retention_hours)")
    p.add_argument("--no-optimize", action="store_true", help="skip compaction")
    p.add_argument("--dry-run", action="store_true", help="only list the files VACUUM would remove")

    p = sub.add_parser("demo-data", parents=[common], help="generate the demo source systems with ground truth")
    p.add_argument("--persons", type=int, default=3000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("evaluate", parents=[common], help="score silver/entity_map against a truth file")
    _add_conf(p)
    p.add_argument("--truth", required=True, help="truth.csv with source, source_record_id, person_id")
    p.add_argument("--out", help="JSON report path (default: <lake>/reports/evaluation-<time>.json)")

    p = sub.add_parser("plan", parents=[common], help="pairs per blocking rule on this lake, extrapolated to 10M and 100M records")
    _add_conf(p)
    p.add_argument("--sample-share", type=float, default=0.1, help="share of the records counted again to see each rule's growth (0.1)")
    p.add_argument("--targets", default="10000000,100000000", help="record counts to extrapolate to, comma-separated")
    p.add_argument("--out", help="JSON report path (default: <lake>/reports/plan-<time>.json)")

    p = sub.add_parser("explain", parents=[common], help="write Splink's waterfall chart for a pair of records as HTML")
    _add_conf(p)
    p.add_argument("record_key_a")
    p.add_argument("record_key_b")
    p.add_argument("--out", default="explain.html")

    p = sub.add_parser(
        "audience", parents=[common], help="customers chosen by a SQL condition over customer_360 and life_events, with consent"
    )
    _add_conf(p)
    p.add_argument("--where", required=True, help="Spark SQL condition, e.g. \"moved_at >= date'2026-01-01' and age_band = '25-34'\"")
    p.add_argument("--channel", default="email", help="email, sms or phone: only customers who consented to it (default email)")
    p.add_argument("--out", help="CSV file to write the audience to (default: count and preview only)")
    p.add_argument("--unmasked", action="store_true", help="write contact points in clear (default: masked, j***@example.com)")
    p.add_argument("--preview", type=int, default=10, help="rows to show (default 10)")

    p = sub.add_parser(
        "erase", parents=[common], help="remove one person from every table, the outbox and PostgreSQL, for good (GDPR erasure)"
    )
    _add_conf(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="a customer id")
    who.add_argument("--record", help="a source record key SOURCE:ID (the person it belongs to)")
    who.add_argument("--email", help="an e-mail address the person's records hold")
    who.add_argument("--national-id", dest="national_id", help="a national id the person's records hold")
    p.add_argument("--reason", required=True, help="why (kept in privacy/erasure_audit; name no personal value here)")
    p.add_argument("--as", dest="by", help="who erases (default: cli:$USER)")
    p.add_argument("--dry-run", action="store_true", help="show who and how many rows would be erased; change nothing")
    p.add_argument("--all-matches", action="store_true", help="erase every customer an e-mail or national id names (refused otherwise)")
    _add_json(p, "the erasure report")

    p = sub.add_parser("init", parents=[common], help="write a starter project (config, example source, job, notebook)")
    p.add_argument("dir", help="folder for the new project (new or empty)")
    p.add_argument("--force", action="store_true", help="write the starter files into a folder that holds files")

    p = sub.add_parser("tables", parents=[common], help="every contract table's path, grain and columns (no Spark needed)")
    p.add_argument("--json", action="store_true", help="as JSON instead of a Markdown table")

    p = sub.add_parser("customer", parents=[common], help="one view of a customer across sources")
    csub = p.add_subparsers(dest="customer_command", required=True, metavar="ACTION")
    show = csub.add_parser("show", parents=[common], help="golden record, provenance, source records and recent facts")
    show.add_argument("key", help="customer id, email or phone")
    _add_conf(show)
    show.add_argument("--as-of", type=_parse_timestamp, help="show the customer as known then (ISO timestamp)")
    show.add_argument(
        "--time", choices=("recorded", "effective"), default="recorded",
        help="--as-of by when the lake learnt it (recorded, default) or when it was true at the sources (effective)",
    )
    _add_json(show, "the view")

    p = sub.add_parser("steward", parents=[common], help="link, separate or unlink records for every later run (no Spark)")
    ssub = p.add_subparsers(dest="steward_command", required=True, metavar="ACTION")
    for name, what, keys in (
        ("link", "the two are one customer", ("a", "b")),
        ("separate", "the two are different customers", ("a", "b")),
        ("unlink", "the record is not the customer it is with", ("record_key",)),
        ("revoke", "undo an earlier decision (its id from `cdi steward decisions`)", ("decision_id",)),
    ):
        act = ssub.add_parser(name, parents=[common], help=what)
        for key in keys:
            act.add_argument(key, help="a source record key (source:id) or a customer id" if key in ("a", "b") else key)
        _add_conf(act)
        act.add_argument("--reason", required=True, help="why (kept with the decision)")
        act.add_argument("--as", dest="steward", help="who decides (default: cli:$USER)")
    for name, what in (("decisions", "every steward decision, newest first"), ("review", "the review queue: uncertain pairs")):
        act = ssub.add_parser(name, parents=[common], help=what)
        _add_conf(act)
        act.add_argument("--limit", type=int, default=50)
        _add_json(act, "the list")

    p = sub.add_parser("serve", parents=[common], help="the service desk: HTTP API and web pages over the lake (Spark only for real-time matching)")
    _add_conf(p)
    p.add_argument("--host", help="address to listen on (default: service.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: service.port, 8080)")
    return parser


def _load(conf: str, redactor: Redactor):
    """The validated config; from here on its secrets are masked in the logs and in our errors."""
    from cdi.config import load_config

    cfg = load_config(conf)
    redactor.extend(cfg.redactor.secrets)
    return cfg


def _cmd_stages(args, stages: Sequence[str], redactor: Redactor) -> int:
    from cdi import pipeline
    from cdi.config import check_run_id

    run_id = check_run_id(args.run_id) if args.run_id is not None else None
    cfg = _load(args.conf, redactor)  # fails fast, before Spark starts
    result = pipeline.run(
        cfg,
        stages=stages,
        run_id=run_id,
        retrain=getattr(args, "retrain", False),
        full=getattr(args, "full", False),
        sources=getattr(args, "source", None),
        command=f"cdi {args.command}",
    )
    print(json_text(result.summary.as_dict()) if args.json else result.summary.format())
    return EXIT_OK


def _cmd_maintain(args, redactor: Redactor) -> int:
    from cdi.pipeline import maintain

    cfg = _load(args.conf, redactor)
    retain = cfg.storage.vacuum_retention_hours if args.retain_hours is None else args.retain_hours
    report = maintain(cfg, retain, optimize=not args.no_optimize, dry_run=args.dry_run)
    print(report.format())
    return EXIT_OK


def _cmd_demo_data(args) -> int:
    from cdi.pipeline import demo_generator

    generate = demo_generator()
    try:
        manifest = generate(persons=args.persons, seed=args.seed, out=args.out)
    except ValueError as exc:  # the generator checks its arguments: a usage error
        raise ConfigError(f"demo-data: {exc}") from exc
    counts = manifest.get("counts", {}) if isinstance(manifest, dict) else {}
    print(f"demo data written to {args.out}: {counts}")
    return EXIT_OK


def _cmd_evaluate(args, redactor: Redactor) -> int:
    from cdi.lake import Lake
    from cdi.pipeline import open_session
    from cdi.quality.evaluate import evaluate, read_truth, write_report

    cfg = _load(args.conf, redactor)
    if not Path(args.truth).exists():
        raise ConfigError(f"--truth: file {args.truth} does not exist")
    spark = open_session(cfg)
    lake = Lake(spark, cfg.lake_root, job="evaluate", engine=cfg.storage.engine).for_readers()
    report = evaluate(lake.read(schema.ENTITY_MAP), read_truth(spark, args.truth))
    out = args.out or f"{cfg.lake_root}/reports/evaluation-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_report(report, out)
    print(report.format_table())
    print(f"report written to {out}")
    return EXIT_OK


def _cmd_plan(args, redactor: Redactor) -> int:
    from cdi.lake import Lake
    from cdi.pipeline import open_session
    from cdi.silver.linkage.plan import check_arguments, comparison_plan, plan_table

    cfg = _load(args.conf, redactor)
    try:
        targets = [int(t.replace("_", "")) for t in args.targets.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--targets: give record counts separated by commas (e.g. 10000000,100000000), not {args.targets!r}") from None
    check_arguments(args.sample_share, targets)  # before Spark starts
    spark = open_session(cfg)
    lake = Lake(spark, cfg.lake_root, job="plan", engine=cfg.storage.engine).for_readers()
    plan = comparison_plan(lake, cfg.lake_root, sample_share=args.sample_share, targets=targets)
    out = args.out or f"{cfg.lake_root}/reports/plan-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(plan.as_dict(), indent=2) + "\n", encoding="utf-8")
    print(plan_table(plan))
    print(f"report written to {out}")
    return EXIT_OK


def _cmd_explain(args, redactor: Redactor) -> int:
    from cdi.lake import Lake
    from cdi.pipeline import open_session
    from cdi.silver.explain import explain_pair

    cfg = _load(args.conf, redactor)
    spark = open_session(cfg)
    lake = Lake(spark, cfg.lake_root, job="explain", engine=cfg.storage.engine).for_readers()
    path = explain_pair(cfg, lake, args.record_key_a, args.record_key_b, args.out)
    if path.cross_reference:
        print(f"linked by cross-reference: {path.cross_reference}")
    print(f"waterfall chart written to {path}")
    return EXIT_OK


def _cmd_audience(args, redactor: Redactor) -> int:
    from cdi import analytics
    from cdi.gold.audience import check_channel, check_condition
    from cdi.lake import Lake
    from cdi.pipeline import open_session

    cfg = _load(args.conf, redactor)
    check_condition(args.where)
    check_channel(args.channel)
    spark = open_session(cfg)
    lake = Lake(spark, cfg.lake_root, job="audience", engine=cfg.storage.engine).for_readers()
    found = analytics.audience(lake, args.where, args.channel, args.out, masked=not args.unmasked, preview=args.preview)
    print(f"{found['customers']:,} customer(s) match and consented to {args.channel}")
    if len(found["preview"]):
        print(found["preview"].to_string(index=False))
    if found["file"]:
        print(f"written to {found['file']}{'' if args.unmasked else ' (contact points masked; --unmasked writes them)'}")
    return EXIT_OK


def _cmd_erase(args, redactor: Redactor) -> int:
    import getpass

    from cdi import pipeline
    from cdi.privacy.erasure import SELECTORS, Selector
    from cdi.privacy.register import require_key

    kind = next(k for k in SELECTORS if getattr(args, k) is not None)
    selector = Selector(kind, getattr(args, kind))
    if not args.reason.strip():
        raise ConfigError("erase: --reason is empty; say why (a ticket number, the request's date)")
    cfg = _load(args.conf, redactor)
    require_key(cfg.privacy.hash_key)  # before Spark starts
    by = args.by or f"cli:{getpass.getuser()}"
    report = pipeline.erase(cfg, selector, args.reason, by, dry_run=args.dry_run, all_matches=args.all_matches)
    print(json_text(report.as_dict()) if args.json else report.format())
    return EXIT_OK


def _cmd_customer(args, redactor: Redactor) -> int:
    from cdi.gold.customer_view import customer_view
    from cdi.lake import Lake
    from cdi.pipeline import open_session

    cfg = _load(args.conf, redactor)
    spark = open_session(cfg)
    lake = Lake(spark, cfg.lake_root, job="customer", engine=cfg.storage.engine).for_readers()
    view = customer_view(spark, cfg, lake, args.key, as_of=args.as_of, time=args.time)
    print(json_text(view.as_dict()) if args.json else view.format())
    return EXIT_OK


def _cmd_steward(args, redactor: Redactor) -> int:
    import getpass

    from cdi import schema
    from cdi.service import stewardship
    from cdi.service.snapshot import load_snapshot

    cfg = _load(args.conf, redactor)
    snap = load_snapshot(cfg.lake_root, only=(schema.ENTITY_MAP, schema.PAIRS, schema.STEWARD_DECISIONS))
    action = args.steward_command
    if action in ("decisions", "review"):
        if action == "decisions":
            rows = stewardship.decisions(snap, args.limit)
        else:
            upper = cfg.service.review_upper if cfg.service.review_upper is not None else cfg.linkage.cluster_threshold
            rows = stewardship.review_queue(snap, cfg.service.review_lower, upper, args.limit)
        if args.json:
            print(json_text(rows))
        else:
            for r in rows:
                if action == "decisions":
                    print(f"{r['decided_at']:%Y-%m-%d %H:%M}  {r['decision_id']}  {r['action']:<8} {r['record_key_l'] or r['revokes']}"
                          f" {r['record_key_r'] or ''} ({r['pairs']} pair(s))  by {r['steward']}: {r['reason']}")  # fmt: skip
                else:
                    print(f"{r['match_probability']:.3f}  {r['record_key_l']}  {r['record_key_r']}  "
                          f"({r['customer_l']}{' = ' if r['same_customer'] else ' / '}{r['customer_r']})")  # fmt: skip
            print(f"{len(rows)} {'decision(s)' if action == 'decisions' else 'pair(s) to review'}")
        return EXIT_OK
    who = args.steward or f"cli:{getpass.getuser()}"
    common = {"steward": who, "reason": args.reason, "origin": "cli"}
    if action == "link":
        out = stewardship.link(snap, args.a, args.b, **common)
    elif action == "separate":
        out = stewardship.separate(snap, args.a, args.b, **common)
    elif action == "unlink":
        out = stewardship.unlink(snap, args.record_key, **common)
    else:
        out = stewardship.revoke(snap, args.decision_id, **common)
    print(f"recorded {out['action']} {out['decision_id']} ({out['pairs']} pair(s)) by {who}; it applies {out['applies']}")
    return EXIT_OK


def _cmd_serve(args, redactor: Redactor) -> int:
    from cdi.service.app import serve

    serve(_load(args.conf, redactor), host=args.host, port=args.port)
    return EXIT_OK


def _cmd_init(args) -> int:
    from cdi.starter import ENV_FILE, init_project

    written = init_project(args.dir, force=args.force)
    print(f"wrote {len(written)} files into {args.dir}; next:\n  cd {args.dir} && cdi run --conf {ENV_FILE}")
    return EXIT_OK


def _cmd_tables(args) -> int:
    from cdi import reference

    print(json_text(reference.as_json()) if args.json else reference.markdown())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v and -q exclude each other")
    _setup_logging(args.verbose, args.quiet)
    redactor = Redactor()
    try:
        with masked_logs(redactor):
            return _dispatch(parser, args, redactor)
    except BrokenPipeError:
        # the reader went away (`cdi customer show ... | head`): what it read was all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, redactor: Redactor) -> int:
    from cdi.spark import JavaMissingError

    try:
        if args.command == "run":
            return _cmd_stages(args, ("ingest", "link", "gold"), redactor)
        if args.command in ("ingest", "link", "gold"):
            return _cmd_stages(args, (args.command,), redactor)
        if args.command == "demo-data":
            return _cmd_demo_data(args)
        if args.command == "maintain":
            return _cmd_maintain(args, redactor)
        if args.command == "evaluate":
            return _cmd_evaluate(args, redactor)
        if args.command == "explain":
            return _cmd_explain(args, redactor)
        if args.command == "plan":
            return _cmd_plan(args, redactor)
        if args.command == "customer":
            return _cmd_customer(args, redactor)
        if args.command == "audience":
            return _cmd_audience(args, redactor)
        if args.command == "erase":
            return _cmd_erase(args, redactor)
        if args.command == "steward":
            return _cmd_steward(args, redactor)
        if args.command == "serve":
            return _cmd_serve(args, redactor)
        if args.command == "tables":
            return _cmd_tables(args)
        if args.command == "init":
            return _cmd_init(args)
    except BrokenPipeError:
        raise
    except ConfigError as exc:
        print(redactor.text(f"cdi: configuration error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except (CdiError, JavaMissingError) as exc:  # an expected failure: its message says what to do
        log.debug("failure", exc_info=True)
        print(redactor.text(f"cdi: {args.command} failed: {one_line(exc)}"), file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # a bug: name the type; the traceback is in the debug log (-v)
        log.debug("failure", exc_info=True)
        print(redactor.text(f"cdi: {args.command} failed: {type(exc).__name__}: {one_line(exc)}"), file=sys.stderr)
        return EXIT_FAILED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
