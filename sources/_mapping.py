"""Map an extract's columns onto the canonical schema, as its contract declares (no standardisation here)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from sources import canonical
from sources._contract import Condition, FieldSpec, PersonMapping, SourceContract
from sources._standardise import _PREFIX_TITLES, ATTRIBUTE, clean_attribute, clean_identifier

_DATE_FIELDS = {name for name, dtype in canonical.PERSON_RECORD.items() if isinstance(dtype, pl.Date)}
# titles taken off a name before its forenames are split ("Mr John" is John, not Mr), with or without a dot
_TITLE_WORDS = f"{_PREFIX_TITLES}|revd|lord|lady"  # standardisation's titles, and those it keeps alone
_LEADING_TITLES = rf"^((?i:(?:{_TITLE_WORDS})\.?\s+)+)"  # "Prof Sir John": every title before the name
_TRAILING_TITLE = rf"\s+((?i:{_TITLE_WORDS})\.?)$"  # "SMITH, JOHN MR": only in the surname-first form
# two people in one name field ("Mr & Mrs Smith", "Mr and Mrs J Smith", "John + Jane Smith"): "&", "+" or the word
# "and" between words (Andrew, Alexander, Sandy are names; a lone "&" is junk, not two people)
_JOINT_NAME = r"(?i)\S\s*[&+]\s*\S|\S\s+and\s+\S"
_FORENAME_FIELDS = ("full_name", "surname_first_name", "forenames", "first_name")
_DIRECTIVE = re.compile(r"%[-_0^#]?[0-9]*[.:]?([A-Za-z%])")  # a strftime directive, its letter captured


@dataclass(frozen=True)
class MappedExtract:
    person_record: pl.DataFrame
    involvement: pl.DataFrame
    event: pl.DataFrame
    stated_relationship: pl.DataFrame
    person_identifier: pl.DataFrame


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    trimmed = expr.cast(pl.String).str.strip_chars()
    return pl.when(trimmed == "").then(None).otherwise(expr.cast(pl.String))


def value_expr(spec: FieldSpec) -> pl.Expr:
    """The text value of a field spec (recoded, null when blank)."""
    if spec.value is not None:
        expr = pl.lit(spec.value, pl.String)
    elif spec.column is not None:
        expr = _blank_to_null(pl.col(spec.column))
    else:
        parts = [_blank_to_null(pl.col(c)).str.strip_chars() for c in spec.columns or []]
        expr = _blank_to_null(pl.concat_str(parts, separator=spec.separator, ignore_nulls=True))
    if spec.values is not None:
        expr = expr.str.strip_chars().replace_strict(spec.values, default=spec.default, return_dtype=pl.String)
    return expr


def parse_dates(text: pl.Expr, formats: list[str], latest: dt.date | None = None) -> pl.Expr:
    """The date `text` holds, by the first of `formats` that reads it (null when none does).

    A four-digit-year format (%Y) does not read a shorter year: "01/02/80" under %d/%m/%Y would be the year 80,
    so it falls to the next format or is unparseable (and flagged as such), never an impossible date. A year
    written with four digits stays, however early ("0800-01-01", in a register of historical persons). A
    two-digit year (%y) is read as the latest such date not after `latest` (the extract date, or today when the
    extract's date is unknown): a date it would put after `latest` moves back 100 years, so "01/02/58" in an
    extract of 2026 is 1958, not 2058. Without `latest` (a date that may lie ahead, as a planned end date) the
    parser's own rule stands: 00-68 are 2000-2068, 69-99 are 1969-1999.
    """
    dates = []
    for fmt in formats:
        directives = set(_DIRECTIVE.findall(fmt))
        date = text.str.strptime(pl.Date, fmt, strict=False, exact=True)
        if "Y" in directives:  # fewer than four digits read as a year below 1000; "0800-01-01" is the year 800
            written = date.dt.year().cast(pl.String).str.zfill(4)
            date = pl.when((date.dt.year() >= 1000) | text.str.contains(written, literal=True)).then(date)
        if "y" in directives and latest is not None:
            date = pl.when(date > pl.lit(latest, pl.Date)).then(date.dt.offset_by("-100y")).otherwise(date)
        dates.append(date)
    return pl.coalesce(dates)


def date_expr(spec: FieldSpec, latest: dt.date | None = None) -> pl.Expr:
    """The date of a field spec, read by its formats as `parse_dates` reads them."""
    return parse_dates(value_expr(spec).str.strip_chars(), spec.formats or ["%Y-%m-%d"], latest)


def _titles(expr: pl.Expr) -> pl.Expr:
    """"Prof. Sir " -> "Prof Sir": the titles a name carried, without dots, or null."""
    return _blank_to_null(expr.str.replace_all(r"\.", "").str.replace_all(r"\s+", " ").str.strip_chars())


def _name_parts(text: pl.Expr, surname_first: pl.Expr, surname_last: bool) -> dict[str, pl.Expr]:
    """title, first_name, middle_names and last_name of a name, nothing dropped but titles.

    Where `surname_first` the name is "SURNAME, Forenames": everything after the first comma is forenames
    ("SMITH, JOHN, PAUL" is John Paul Smith) and a title may lead or trail them ("O'BRIEN, MR SEAN",
    "SMITH, JOHN MR"). Otherwise it is leading titles, the first forename and the middle names, then, when
    `surname_last`, the last word as the surname ("Mr John Paul Smith"). A title alone stays as the forename
    (standardisation flags it).
    """
    text = text.str.replace_all(r"\s+", " ").str.strip_chars()
    parts = text.str.split(",")
    forenames = (pl.when(surname_first).then(parts.list.slice(1).list.join(" ")).otherwise(text)
                 .str.replace_all(r"\s+", " ").str.strip_chars())
    leading = forenames.str.extract(_LEADING_TITLES, 1)
    rest = forenames.str.replace(_LEADING_TITLES, "")
    trailing = pl.when(surname_first).then(rest.str.extract(_TRAILING_TITLE, 1))
    rest = pl.when(surname_first).then(rest.str.replace(_TRAILING_TITLE, "")).otherwise(rest)
    words = rest.str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    count = words.list.len().cast(pl.Int64)
    surname_in_words = ~surname_first & surname_last & (count > 1)
    return {
        "title": _titles(pl.coalesce(leading, trailing)),
        "first_name": words.list.first(),
        "middle_names": _blank_to_null(pl.when(surname_in_words).then(words.list.slice(1, count - 2))
                                       .otherwise(words.list.slice(1)).list.join(" ")),
        "last_name": pl.when(surname_first).then(_blank_to_null(parts.list.first().str.strip_chars()))
        .when(surname_in_words).then(words.list.last()),
    }


def joint_names(mapping: PersonMapping) -> list[tuple[list[str], pl.Expr]]:
    """For each field of `mapping` that carries forenames: its source columns, and whether a row's value names two
    people (a joint name), which no one person record can hold."""
    return [(spec.source_columns(), value_expr(spec).str.contains(_JOINT_NAME).fill_null(False))
            for name, spec in mapping.fields().items() if name in _FORENAME_FIELDS and spec.source_columns()]


def condition_expr(cond: Condition | None) -> pl.Expr:
    if cond is None:
        return pl.lit(True)
    value = pl.col(cond.column).cast(pl.String).str.strip_chars().fill_null("")
    expr = pl.lit(True)
    if cond.not_empty:
        expr = expr & (value != "")
    if cond.equals is not None:
        expr = expr & (value == cond.equals)
    if cond.in_ is not None:
        expr = expr & value.is_in(cond.in_)
    if cond.not_in is not None:
        expr = expr & ~value.is_in(cond.not_in)
    return expr


def _person_columns(mapping: PersonMapping, latest: dt.date) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Expressions for the canonical person columns, and for flags of unparseable dates. `latest` is the
    extract's date (or today): no two-digit year is read as later than it."""
    exprs: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    fields = mapping.fields()
    name_titles: list[pl.Expr] = []  # titles taken off a name; a mapped title column comes first
    for name, spec in fields.items():
        if name in ("full_name", "surname_first_name", "forenames"):
            # full_name: "Mr John Paul Smith", or "SMITH, John Paul" when it has a comma; surname_first_name:
            # "SMITH, JOHN PAUL"; forenames: "JOHN PAUL", the first forename and the rest as middle names
            surname_first = value_expr(spec).str.contains(",") if name == "full_name" else pl.lit(
                name == "surname_first_name")
            parts = _name_parts(value_expr(spec), surname_first, surname_last=name == "full_name")
            name_titles.append(parts.pop("title"))
            if name == "forenames":
                parts.pop("last_name")
            exprs += [expr.alias(column) for column, expr in parts.items()]
        elif name in _DATE_FIELDS:
            exprs.append(date_expr(spec, latest).alias(name))
            flags.append(pl.when(value_expr(spec).is_not_null() & date_expr(spec, latest).is_null())
                         .then(pl.lit(f"{name}_unparseable")))
        elif name == "title":
            continue  # with any title taken off a name, below
        elif name == "aliases":
            sep = spec.list_separator or ";"
            exprs.append(value_expr(spec).str.split(sep).list.eval(pl.element().str.strip_chars())
                         .list.eval(pl.element().filter(pl.element() != "")).alias("aliases"))
        elif name == "address_text" and spec.no_fixed_abode_values:
            raw = value_expr(spec)
            nfa = raw.str.strip_chars().str.to_uppercase().is_in([v.upper() for v in spec.no_fixed_abode_values])
            exprs += [pl.when(nfa).then(None).otherwise(raw).alias("address_text"), nfa.alias("no_fixed_abode")]
        elif name in ("no_fixed_abode", "confidential"):
            exprs.append((value_expr(spec).str.to_uppercase().is_in(["Y", "YES", "TRUE", "1"])).alias(name))
        elif name == "uprn":
            exprs.append(value_expr(spec).str.strip_chars().cast(pl.Int64, strict=False).alias("uprn"))
        else:
            exprs.append(value_expr(spec).alias(name))
    titles = ([value_expr(fields["title"])] if "title" in fields else []) + name_titles
    if titles:
        exprs.append(pl.coalesce(titles).alias("title"))
    return exprs, flags


def _persons(frame: pl.DataFrame, mapping: PersonMapping, contract: SourceContract, sha: str,
             extract_date: dt.date | None, role: str, suffix: str = "",
             more_flags: list[pl.Expr] | None = None) -> pl.DataFrame:
    exprs, flags = _person_columns(mapping, extract_date or dt.date.today())
    flags += more_flags or []
    if role == "subject":  # a declared identifier that fails its check is set aside and flagged, never the row
        for ident in contract.identifiers:
            spec = ident.field_spec()
            if spec is not None:
                given = value_expr(spec)
                flags.append(pl.when(given.is_not_null() & clean_identifier(given, ident.check, ident.pattern).is_null())
                             .then(pl.lit(f"{ident.name}_invalid")))
    out = frame.select(
        pl.lit(contract.source).alias("source"),
        (pl.col(contract.record_key).cast(pl.String).str.strip_chars() + suffix).alias("record_id"),
        pl.lit(extract_date, pl.Date).alias("extract_date"),
        pl.lit(sha).alias("file_sha256"),
        pl.col("_row_number").alias("row_number"),
        pl.lit(role).alias("record_role"),
        *exprs,
        pl.concat_list([f for f in flags] or [pl.lit(None, pl.String)]).list.drop_nulls().alias("quality_flags"),
    )
    if "no_fixed_abode" not in out.columns:
        out = out.with_columns(pl.lit(False).alias("no_fixed_abode"))
    return canonical.conform(out, canonical.PERSON_RECORD)


def apply_contract(frame: pl.DataFrame, contract: SourceContract, *, file_sha256: str,
                   extract_date: dt.date | None) -> MappedExtract:
    # a related person with a joint name ("Mr & Mrs Smith" as a pupil's parent contact) is two people, so is not
    # staged; the subject is, flagged (the subject's own joint name quarantines the row: sources/ingest.py)
    related_joint = [pl.any_horizontal([joint for _, joint in joint_names(related.person)] or [pl.lit(False)])
                     for related in contract.related_persons]
    subjects = _persons(frame, contract.person, contract, file_sha256, extract_date, "subject",
                        more_flags=[pl.when(joint).then(pl.lit(f"{related.role}_joint_name"))
                                    for related, joint in zip(contract.related_persons, related_joint)])
    latest = extract_date or dt.date.today()  # no two-digit year of a date that has happened is read as later
    persons = [subjects]
    relationships = []
    key = pl.col(contract.record_key).cast(pl.String).str.strip_chars()
    for related, joint in zip(contract.related_persons, related_joint):
        named = frame.filter(_named(related.person) & ~joint)
        persons.append(_persons(named, related.person, contract, file_sha256, extract_date, related.role,
                                related.record_id_suffix))
        # the related person <relationship> the row's subject; "child_of" is turned round, as for stated
        # relationships, so every row reads "parent_of" (the household's parents, a parent's birth bound)
        related_id, subject_id = key + related.record_id_suffix, key
        child_of = related.relationship == "child_of"
        relationships.append(named.select(
            pl.lit(contract.source).alias("source"),
            (subject_id if child_of else related_id).alias("record_id"),
            (related_id if child_of else subject_id).alias("related_record_id"),
            pl.lit("parent_of" if child_of else related.relationship).alias("relationship"),
        ))
    if contract.stated_relationships is not None:
        relationships.append(_stated(frame, contract))
    involvements = [
        frame.filter(condition_expr(inv.when)).select(
            pl.lit(contract.source).alias("source"), key.alias("record_id"), pl.lit(inv.agency).alias("agency"),
            value_expr(inv.service).alias("service"),
            *[(value_expr(s) if s else pl.lit(None, pl.String)).alias(n) for n, s in (
                ("worker_name", inv.worker_name), ("worker_role", inv.worker_role),
                ("worker_phone", inv.worker_phone), ("worker_email", inv.worker_email))],
            # an end date may be planned, so ahead of the extract: its two-digit year keeps the parser's rule
            *[(date_expr(s, before) if s else pl.lit(None, pl.Date)).alias(n) for n, s, before in (
                ("start_date", inv.start_date, latest), ("end_date", inv.end_date, None))],
        )
        for inv in contract.involvements
    ]
    events = [
        frame.filter(condition_expr(ev.when)).select(
            pl.lit(contract.source).alias("source"), key.alias("record_id"),
            value_expr(ev.event_type).alias("event_type"),
            (date_expr(ev.event_date, latest) if ev.event_date else pl.lit(extract_date, pl.Date)).alias("event_date"),
            (value_expr(ev.value).str.strip_chars().cast(pl.Float64, strict=False) if ev.value
             else pl.lit(None, pl.Float64)).alias("value"),
            (value_expr(ev.detail) if ev.detail else pl.lit(None, pl.String)).alias("detail"),
        )
        for ev in contract.events
    ]

    # declared identifiers and attributes alike: (scheme, scope, normalised value) per record that has one
    declared = [(ident.name, ident.effective_scope,
                 clean_identifier(value_expr(ident.field_spec()), ident.check, ident.pattern))
                for ident in contract.identifiers if ident.field_spec() is not None]
    declared += [(attribute.name, ATTRIBUTE, clean_attribute(value_expr(attribute.field_spec())))
                 for attribute in contract.attributes]
    identifiers = [
        frame.select(pl.lit(contract.source).alias("source"), key.alias("record_id"), pl.lit(scheme).alias("scheme"),
                     pl.lit(scope).alias("scope"), value.alias("value")).filter(pl.col("value").is_not_null())
        for scheme, scope, value in declared
    ]

    def stack(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
        return pl.concat([canonical.conform(f, schema) for f in frames]) if frames else canonical.empty(schema)

    return MappedExtract(
        person_record=pl.concat(persons),
        involvement=stack(involvements, canonical.INVOLVEMENT),
        event=stack(events, canonical.EVENT),
        stated_relationship=stack(relationships, canonical.STATED_RELATIONSHIP),
        person_identifier=stack(identifiers, canonical.PERSON_IDENTIFIER),
    )


def _named(mapping: PersonMapping) -> pl.Expr:
    """A related person exists only where the row names them."""
    name_specs = [s for n, s in mapping.fields().items() if n in ("full_name", "first_name", "last_name", "forenames")]
    if not name_specs:
        return pl.lit(True)
    return pl.any_horizontal([value_expr(s).is_not_null() for s in name_specs])


def _stated(frame: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    rules = contract.stated_relationships
    key = pl.col(contract.record_key).cast(pl.String).str.strip_chars()
    anchors = frame.filter(condition_expr(rules.anchor)).select(
        pl.col(rules.group_by).alias("_group"), key.alias("_anchor")
    ).unique("_group", keep="first")
    members = frame.select(
        pl.col(rules.group_by).alias("_group"), key.alias("_member"),
        pl.col(rules.relationship_column).cast(pl.String).str.strip_chars()
        .replace_strict(rules.values, default=None, return_dtype=pl.String).alias("_rel"),
    ).join(anchors, on="_group").filter((pl.col("_member") != pl.col("_anchor")) & pl.col("_rel").is_not_null())
    # the anchor <relationship> the member; "child_of" is turned round so every row reads "parent_of"
    return members.select(
        pl.lit(contract.source).alias("source"),
        pl.when(pl.col("_rel") == "child_of").then(pl.col("_member")).otherwise(pl.col("_anchor")).alias("record_id"),
        pl.when(pl.col("_rel") == "child_of").then(pl.col("_anchor")).otherwise(pl.col("_member")).alias("related_record_id"),
        pl.when(pl.col("_rel") == "child_of").then(pl.lit("parent_of")).otherwise(pl.col("_rel")).alias("relationship"),
    )
