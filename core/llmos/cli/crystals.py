"""``llmos crystals`` (list, show, test, promote, demote, rollback, rm) and
``llmos crystallize TRACE_ID``: crystallized tools, their versions and their evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from, run

if TYPE_CHECKING:
    from llmos.crystallize.store import CrystalStore, Version
    from llmos.kernel import Kernel

version_option = click.option("--version", "number", metavar="VERSION",
                              help="A version (or a prefix of it); default: the current one.")


def store_of(kernel: Kernel) -> CrystalStore:
    from llmos.crystallize.store import CrystalStore

    return CrystalStore(kernel.db, kernel.workspace)


def _summary(version: Version, kernel: Kernel) -> dict[str, Any]:
    prov = version.provenance
    data = version.as_dict()
    data.pop("provenance")
    tests = prov.get("tests", [])
    data.update(needed_agreements=kernel.config.section("crystallize").agreements,
                params=[{k: p[k] for k in ("name", "type", "slot_kind", "examples")}
                        for p in prov.get("params", [])],
                source_traces=prov.get("source_traces", []),
                tests_passed=sum(1 for t in tests if t.get("agreed")), tests=len(tests))
    return data


def _report(ctx: click.Context, version: Version, kernel: Kernel, as_json: bool,
            headline: str) -> None:
    if as_json:
        emit_json(_summary(version, kernel))
    else:
        console().print(f"{headline}: {version.name} version {version.version} is "
                        f"{version.status} ({version.reason})", markup=False)


@click.group()
def crystals() -> None:
    """Crystallized tools: proven traces compiled into Python, trusted on evidence."""


@crystals.command("list")
@click.option("--all", "every", is_flag=True, help="Every version, not only the current one.")
@json_option
@click.pass_context
def list_crystals(ctx: click.Context, every: bool, as_json: bool) -> None:
    """List crystals (the current version of each).

    JSON: a list of {name, version, signature, normalized_goal, status, created_at,
    agreements, needed_agreements, failures, runs, saved_usd, reason, previous,
    was_active, params, source_traces, tests_passed, tests}."""
    kernel = kernel_from(ctx)
    store = store_of(kernel)
    found = [v for n in store.names() for v in store.versions(n)] if every \
        else store.current_all()
    for version in found:
        version.provenance = store.provenance(version.name, version.version)
    rows = [_summary(v, kernel) for v in found]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no crystals yet (llmos crystallize TRACE_ID)")
        return
    from rich.table import Table

    table = Table("crystal", "version", "status", "agreed", "failures", "runs", "saved",
                  "goal")
    for column in table.columns:
        column.overflow = "fold"  # names and versions are identifiers: never cut them
    for row in rows:
        table.add_row(row["name"], row["version"], row["status"],
                      f"{row['agreements']}/{row['needed_agreements']}", str(row["failures"]),
                      str(row["runs"]), f"${row['saved_usd']:.4f}", row["normalized_goal"])
    console().print(table)


@crystals.command("show")
@click.argument("name")
@version_option
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, number: str | None, as_json: bool) -> None:
    """One crystal version: provenance, parameters, tests, code, events, other versions.

    JSON: the list fields plus {provenance, source, events, versions}."""
    kernel = kernel_from(ctx)
    store = store_of(kernel)
    version = store.get(name, number)
    try:
        source = store.source(name, version.version)
    except LookupError as exc:
        source = f"# {exc}"
    data = _summary(version, kernel)
    data.update(provenance=version.provenance, source=source, events=store.events(name),
                versions=[{"version": v.version, "status": v.status, "created_at": v.created_at}
                          for v in store.versions(name)])
    if as_json:
        emit_json(data)
        return
    out = console()
    out.print(f"{name} version {version.version}: {version.status} ({version.reason})",
              markup=False)
    out.print(f"goal: {version.normalized_goal}", markup=False)
    writer = version.provenance.get("writer", {})
    out.print(f"from traces {', '.join(data['source_traces'])}; written by run "
              f"{writer.get('run_id')} ({writer.get('model')}, ${writer.get('cost_usd', 0):.4f})",
              markup=False)
    out.print(f"tests {data['tests_passed']}/{data['tests']} · agreements "
              f"{version.agreements}/{data['needed_agreements']} · failures {version.failures}"
              f" · runs {version.runs} · saved ${version.saved_usd:.4f}", markup=False)
    out.print("\n" + source, markup=False, highlight=False)
    for event in data["events"]:
        out.print(f"  {event['ts']} {event['version']} {event['event']}: {event['detail']}",
                  markup=False)


@crystals.command("test")
@click.argument("name")
@version_option
@json_option
@click.pass_context
def test(ctx: click.Context, name: str, number: str | None, as_json: bool) -> None:
    """Run a version's regression suite (a cassette per source trace, no world touched).

    JSON: {name, version, status, passed, results: [{trace_id, agreed, reason, answer}]}.
    Exit 1 when a cassette disagrees."""
    from llmos.crystallize.writer import record_tests

    kernel = kernel_from(ctx)

    async def go():
        async with kernel:
            store = store_of(kernel)
            version = await record_tests(kernel, store, store.get(name, number))
            return version, version.provenance.get("tests", [])

    version, results = run(go())
    passed = all(r["agreed"] for r in results)
    if as_json:
        emit_json({"name": name, "version": version.version, "status": version.status,
                   "passed": passed, "results": results})
    else:
        for r in results:
            click.echo(f"{'ok  ' if r['agreed'] else 'FAIL'} trace {r['trace_id']}"
                       + (f": {r['reason']}" if r["reason"] else ""))
        click.echo(f"{name} {version.version}: {'passed' if passed else 'failed'} "
                   f"({version.status})")
    if not passed:
        ctx.exit(1)


@crystals.command("promote")
@click.argument("name")
@version_option
@json_option
@click.pass_context
def promote(ctx: click.Context, name: str, number: str | None, as_json: bool) -> None:
    """Make a version active by hand (its regression suite must pass)."""
    from llmos.crystallize.writer import record_tests
    from llmos.errors import OperationFailed

    kernel = kernel_from(ctx)

    async def go():
        async with kernel:
            store = store_of(kernel)
            version = store.get(name, number)
            if version.status == "rejected":
                raise OperationFailed(f"{name} {version.version} failed the allowlist: "
                                      f"{version.reason}")
            version = await record_tests(kernel, store, version)
            failed = [t for t in version.provenance.get("tests", []) if not t["agreed"]]
            if failed:
                raise OperationFailed(f"{name} {version.version}: its regression test "
                                      f"failed ({failed[0]['reason']}); not promoted")
            return store.set_status(name, version.version, "active", "promoted by the user")

    _report(ctx, run(go()), kernel, as_json, "promoted")


@crystals.command("demote")
@click.argument("name")
@version_option
@json_option
@click.pass_context
def demote(ctx: click.Context, name: str, number: str | None, as_json: bool) -> None:
    """Stop a version from bidding (and from shadowing)."""
    kernel = kernel_from(ctx)
    store = store_of(kernel)
    version = store.get(name, number)
    _report(ctx, store.set_status(name, version.version, "demoted", "demoted by the user"),
            kernel, as_json, "demoted")


@crystals.command("rollback")
@click.argument("name")
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, as_json: bool) -> None:
    """Retire the current version and make the one before it (that was active) active."""
    from llmos.errors import OperationFailed

    kernel = kernel_from(ctx)
    store = store_of(kernel)
    current = store.get(name)
    versions = store.versions(name)
    before = [v for v in versions[: [v.version for v in versions].index(current.version)]
              if v.was_active and v.status != "rejected"]
    if not before:
        raise OperationFailed(f"{name} has no earlier version that was active to roll back to")
    store.set_status(name, current.version, "retired", "rolled back by the user")
    target = store.set_status(name, before[-1].version, "active",
                              f"rolled back to (from {current.version})")
    _report(ctx, target, kernel, as_json, "rolled back")


@crystals.command("rm")
@click.argument("name")
@version_option
@json_option
@click.pass_context
def rm(ctx: click.Context, name: str, number: str | None, as_json: bool) -> None:
    """Remove a crystal (every version), or one version with --version."""
    store = store_of(kernel_from(ctx))
    removed = store.remove(name, number)
    if as_json:
        emit_json({"name": name, "removed": removed})
    else:
        click.echo(f"removed {name} " + ", ".join(removed))


@click.command()
@click.argument("trace_id")
@json_option
@click.pass_context
def crystallize(ctx: click.Context, trace_id: str, as_json: bool) -> None:
    """Compile TRACE_ID and the other solved instances of its goal into a crystal.

    One paid, budgeted, recorded model run writes the code; the allowlist checks it;
    the source traces' cassettes test it; a version that passes starts in shadow.
    JSON: the fields of ``llmos crystals list --json``. Exit 1 when it fails, 3 when the
    budget cannot pay for it."""
    kernel = kernel_from(ctx)

    async def go():
        async with kernel:
            able = [e for e in kernel.crystallizers if hasattr(e.value, "crystallize")]
            if not able:
                from llmos.errors import OperationFailed

                raise OperationFailed("no crystallizer is loaded (is llmos.crystallize.plugin "
                                      "in LLMOS_DISABLE_PLUGINS?)")
            return await able[0].value.crystallize(kernel, trace_id)

    _report(ctx, run(go()), kernel, as_json, "crystallized")
