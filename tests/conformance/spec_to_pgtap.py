#!/usr/bin/env python3
"""Reads the data model of docs/schema.md and prints a pgTAP test that compares
it with the installed catalog: tables, columns, types, NOT NULL, defaults,
CHECKs, primary and foreign keys (with ON DELETE), UNIQUEs, indexes, row level
security and policies. The spec stays the single source: nothing expected is
written twice.

    python3 tests/conformance/spec_to_pgtap.py docs/schema.md | pg_prove -d db /dev/stdin
"""
import re
import sys

TYPES = {
    "UUID": "uuid",
    "TEXT": "text",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "JSONB": "jsonb",
    "TIMESTAMPTZ": "timestamp with time zone",
}
# What pg_dialer adds to the spec, as the README documents it: the only
# columns and indexes beyond the spec's that the catalog may hold.
ADDITIONS = {
    "call_queue": {
        "columns": {"provider_phone_number_id": "uuid", "claimed_at": "timestamp with time zone",
                    "idempotency_key": "text", "campaign_id": "uuid", "call_window": "jsonb",
                    "expires_at": "timestamp with time zone"},
        "indexes": ["call_queue_idempotency_key", "call_queue_due", "call_queue_in_progress",
                    "call_queue_reserved", "call_queue_call_id", "call_queue_campaign", "call_queue_expiring"],
    },
    "user_profiles": {"columns": {"call_window": "jsonb"}, "indexes": []},
    "call_service_providers": {"columns": {"api": "text"}, "indexes": []},
    "call_templates": {"columns": {"provider_agent_id": "text"}, "indexes": []},
    "user_subscriptions": {
        "columns": {"billing_anchor": "timestamp with time zone"},
        "indexes": [],
    },
    "user_call_usage": {"columns": {}, "indexes": ["user_call_usage_period"]},
    "user_call_history": {"columns": {}, "indexes": ["user_call_history_call_id", "user_call_history_user_recent"]},
    "provider_phone_numbers": {
        "columns": {"last_used_at": "timestamp with time zone"},
        "indexes": ["provider_phone_numbers_area", "provider_phone_numbers_country_lru", "provider_phone_numbers_lru"],
    },
}
# Tables pg_dialer adds to the spec's (README, "Additions to the spec").
ADDED_TABLES = ["campaigns"]
COMMANDS = {"SELECT": "SELECT", "INSERT": "INSERT", "UPDATE": "UPDATE", "DELETE": "DELETE"}


def sql_text(value):
    return "'" + value.replace("'", "''") + "'"


def sql_array(values):
    return "ARRAY[" + ", ".join(sql_text(v) for v in values) + "]::text[]"


def pg_type(spec_type):
    m = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", spec_type)
    if m:
        return f"numeric({m.group(1)},{m.group(2)})"
    return TYPES[spec_type]


def default_pattern(spec_default):
    """A POSIX regex the catalog's pg_get_expr() of the default must match."""
    d = spec_default.strip()
    if d == "uuid_generate_v4()":
        # Schema-qualified where uuid-ossp lives outside the search_path
        # (schema extensions on Supabase).
        return r"^([a-z_]+\.)?uuid_generate_v4\(\)$"
    if d == "CURRENT_TIMESTAMP":
        return r"^CURRENT_TIMESTAMP$"
    if d in ("TRUE", "FALSE"):
        return "^" + d.lower() + "$"
    if re.fullmatch(r"-?\d+", d):
        return "^" + d + "$"
    m = re.fullmatch(r"'([^']*)'", d)
    if m:
        return "^'" + re.escape(m.group(1)) + r"'::text$"
    raise ValueError(f"unknown default {spec_default!r}")


def parse(spec):
    tables = []
    table = None
    section = None
    for line in spec.splitlines():
        m = re.match(r"^## \d+\. `(\w+)`", line)
        if m:
            table = {"name": m.group(1), "columns": [], "indexes": [], "uniques": [], "policies": []}
            tables.append(table)
            section = "columns"
            continue
        if table is None:
            continue
        if line.startswith("**Indexes:**"):
            section = "indexes"
        elif line.startswith("**Constraints:**"):
            section = "constraints"
        elif line.startswith("**RLS Policies:**"):
            section = "policies"
        elif section == "columns" and line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            name = cells[0].strip("`")
            table["columns"].append(column(name, cells[1], cells[2], cells[3]))
        elif section == "indexes" and line.startswith("- `"):
            m = re.match(r"- `(\w+)` on \((.*)\)", line)
            table["indexes"].append((m.group(1), re.findall(r"`(\w+)`", m.group(2))))
        elif section == "constraints" and line.startswith("- UNIQUE"):
            table["uniques"].append(re.findall(r"`(\w+)`", line))
        elif section == "policies" and line.startswith("- `"):
            m = re.match(r"- `([^`]+)`: (.*)", line)
            text = m.group(2)
            cmd = "ALL" if text.startswith("All operations") else COMMANDS[text.split()[0]]
            table["policies"].append((m.group(1), cmd))
    return tables


def column(name, spec_type, description, constraints):
    col = {"name": name, "type": pg_type(spec_type), "pk": False, "fk": None,
           "not_null": False, "default": None, "check": None, "cascade": False}
    parts = constraints
    col["pk"] = bool(re.search(r"\bPK\b", parts))
    col["not_null"] = "NOT NULL" in parts or col["pk"]
    col["cascade"] = "ON DELETE CASCADE" in parts
    m = re.search(r"Default: ([^,]+(?:\(\))?)", parts)
    if m:
        col["default"] = m.group(1).strip()
    m = re.search(r"CHECK \(\w+ IN \(([^)]*)\)\)", parts)
    if m:
        col["check"] = re.findall(r"'([^']*)'", m.group(1))
    if re.search(r"\bFK\b", parts):
        m = re.search(r"[Rr]eferences ([\w.]+)", description)
        target = m.group(1)
        col["fk"] = target if "." in target else "public." + target
    return col


def emit(tables):
    out = []
    t = out.append
    t("BEGIN;")
    t("SELECT * FROM no_plan();")
    t("SET LOCAL search_path = public, extensions;")
    t("SELECT tables_are('public', " + sql_array([x["name"] for x in tables] + ADDED_TABLES) +
      ", 'public holds exactly the eleven tables of the spec and the documented additions');")
    for tab in tables:
        n = tab["name"]
        q = lambda v: sql_text(v)
        t(f"\n-- {n}")
        t(f"SELECT has_table('public', {q(n)}, {q(n + ' exists')});")
        extra = ADDITIONS.get(n, {"columns": {}, "indexes": []})
        t(f"SELECT columns_are('public', {q(n)}, {sql_array([c['name'] for c in tab['columns']] + list(extra['columns']))},"
          f" {q(n + ' has exactly the columns of the spec and the documented additions')});")
        for cn, ct in extra["columns"].items():
            t(f"SELECT col_type_is('public', {q(n)}, {q(cn)}, {q(ct)}, {q(n + '.' + cn + ' (addition) is ' + ct)});")
        pks = [c["name"] for c in tab["columns"] if c["pk"]]
        t(f"SELECT col_is_pk('public', {q(n)}, {sql_array(pks)}, {q(n + ' primary key')});")
        for c in tab["columns"]:
            cn = c["name"]
            label = f"{n}.{cn}"
            t(f"SELECT col_type_is('public', {q(n)}, {q(cn)}, {q(c['type'])}, {q(label + ' is ' + c['type'])});")
            if c["not_null"]:
                t(f"SELECT col_not_null('public', {q(n)}, {q(cn)}, {q(label + ' is NOT NULL')});")
            else:
                t(f"SELECT col_is_null('public', {q(n)}, {q(cn)}, {q(label + ' is nullable')});")
            if c["default"] is None:
                t(f"SELECT col_hasnt_default('public', {q(n)}, {q(cn)}, {q(label + ' has no default')});")
            else:
                t("SELECT matches((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
                  "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
                  f"WHERE d.adrelid = 'public.{n}'::regclass AND a.attname = {q(cn)}), "
                  f"{q(default_pattern(c['default']))}, {q(label + ' defaults to ' + c['default'])});")
            if c["check"] is not None:
                # The set of values the column's CHECK allows, whatever the deparsed form.
                t("SELECT set_eq($$SELECT (regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g'))[1] "
                  "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
                  f"WHERE c.contype = 'c' AND c.conrelid = 'public.{n}'::regclass AND a.attname = '{cn}'$$, "
                  f"{sql_array(c['check'])}, {q(label + ' CHECK allows exactly ' + ', '.join(c['check']))});")
            if c["fk"]:
                schema, target = c["fk"].split(".")
                t(f"SELECT fk_ok('public', {q(n)}, {q(cn)}, {q(schema)}, {q(target)}, 'id', "
                  f"{q(label + ' references ' + c['fk'] + '(id)')});")
                action = "c" if c["cascade"] else "a"
                words = "CASCADE" if c["cascade"] else "NO ACTION"
                t("SELECT is((SELECT c.confdeltype::text FROM pg_constraint c JOIN pg_attribute a "
                  "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                  f"WHERE c.contype = 'f' AND c.conrelid = 'public.{n}'::regclass AND a.attname = {q(cn)}), "
                  f"{q(action)}, {q(label + ' ON DELETE ' + words)});")
            else:
                t(f"SELECT col_isnt_fk('public', {q(n)}, {q(cn)}, {q(label + ' is no foreign key')});")
        for cols in tab["uniques"]:
            t(f"SELECT col_is_unique('public', {q(n)}, {sql_array(cols)}, {q(n + ' UNIQUE(' + ', '.join(cols) + ')')});")
        t(f"SELECT indexes_are('public', {q(n)}, "
          f"{sql_array([i[0] for i in tab['indexes']] + [n + '_pkey'] + [n + '_' + '_'.join(u) + '_key' for u in tab['uniques']] + extra['indexes'])}, "
          f"{q(n + ' has the indexes of the spec and the documented additions, no others')});")
        for name, cols in tab["indexes"]:
            # pgTAP compares deparsed index columns, which quote keywords ("interval").
            quoted = "ARRAY[" + ", ".join(f"quote_ident({q(c)})" for c in cols) + "]"
            t(f"SELECT has_index('public', {q(n)}, {q(name)}, {quoted}, {q(name + ' on (' + ', '.join(cols) + ')')});")
        t(f"SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'public.{n}'::regclass), "
          f"{q(n + ' has row level security enabled')});")
        t(f"SELECT policies_are('public', {q(n)}, {sql_array([p[0] for p in tab['policies']])}, "
          f"{q(n + ' has exactly the policies of the spec')});")
        for name, cmd in tab["policies"]:
            t(f"SELECT policy_cmd_is('public', {q(n)}, {q(name)}, {q(cmd)}, {q(name + ' is for ' + cmd)});")
    t("SELECT * FROM finish();")
    t("ROLLBACK;")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/schema.md"
    with open(path, encoding="utf-8") as f:
        tables = parse(f.read())
    if len(tables) != 11:
        sys.exit(f"expected 11 tables in {path}, found {len(tables)}")
    sys.stdout.write(emit(tables))
